/**
 * A hostile host: no IPv6 in the kernel, a port already taken, a
 * privileged port without privilege.
 */

import assert from "node:assert/strict";
import { connect, roundTrip } from "../_client.ts";
import { linuxOnly, ROOT, runEchod, skipUnless, startEchod } from "../_echod.ts";
import { has } from "../_programs.ts";

// An IPv6-less kernel is simulated with an LD_PRELOAD shim (socket(AF_INET6)
// fails with EAFNOSUPPORT), built in the test with the C compiler.
async function buildShim(dir: string): Promise<string> {
  const shim = `${dir}/no_ipv6.so`;
  const output = await new Deno.Command("cc", {
    args: ["-shared", "-fPIC", "-o", shim, "tests/faults/no_ipv6.c", "-ldl"],
    cwd: ROOT,
  }).output();
  assert.ok(output.success, `cc failed: ${new TextDecoder().decode(output.stderr)}`);
  return shim;
}

Deno.test({
  name: "a host without IPv6: one warning, then IPv4 is served",
  ignore: linuxOnly("the IPv6-less host test", "LD_PRELOAD") ||
    skipUnless(has("cc"), "the IPv6-less host test", "no C compiler (cc) to build its shim"),
  async fn() {
    const shimDir = await Deno.makeTempDir();
    try {
      const echod = await startEchod([], {
        shellPrefix: `export LD_PRELOAD=${await buildShim(shimDir)}`,
      });
      try {
        assert.equal(echod.ready?.mode, "ipv4-only");
        assert.equal(echod.ready?.addresses, `0.0.0.0:${echod.port}`);
        const warnings = echod.records.filter((r) => r.level === "WARNING");
        assert.equal(warnings.length, 1);
        assert.match(
          warnings[0].message,
          /^IPv6 is not available on this host \(.+\): serving IPv4 only$/,
        );
        const conn = await connect("127.0.0.1", echod.port);
        assert.equal(await roundTrip(conn, "v4 only"), "v4 only");
        conn.close();
      } finally {
        assert.equal((await echod.stop()).code, 0);
      }
    } finally {
      await Deno.remove(shimDir, { recursive: true });
    }
  },
});

Deno.test("a port taken by another program: one line, exit 1, for IPv4 and IPv6 holders", async () => {
  for (const hostname of ["0.0.0.0", "::"]) {
    const holder = Deno.listen({ hostname, port: 0 });
    const port = (holder.addr as Deno.NetAddr).port;
    try {
      const { code, stderr } = await runEchod(["--port", String(port)]);
      assert.equal(code, 1);
      assert.match(
        stderr,
        new RegExp(
          `^echod: port ${port} is already in use \\(\\S+\\): stop the program using it or choose another --port\\n$`,
        ),
      );
    } finally {
      holder.close();
    }
  }
});
