/**
 * A hostile host: no IPv6 in the kernel, a port already taken, a
 * privileged port without privilege.
 */

import assert from "node:assert/strict";
import { connect, roundTrip } from "../_client.ts";
import { LINUX, ROOT, runEchod, startEchod } from "../_echod.ts";
import { has } from "../_programs.ts";

// An IPv6-less kernel is simulated with an LD_PRELOAD shim (socket(AF_INET6)
// fails with EAFNOSUPPORT), built here with the C compiler.
const shimDir = await Deno.makeTempDir();
const built = !LINUX
  ? "not Linux"
  : !has("cc")
  ? "no C compiler (cc)"
  : await new Deno.Command("cc", {
    args: ["-shared", "-fPIC", "-o", `${shimDir}/no_ipv6.so`, "tests/faults/no_ipv6.c", "-ldl"],
    cwd: ROOT,
  }).output().then(
    (o) => o.success ? undefined : new TextDecoder().decode(o.stderr),
    (e) => String(e),
  );
const noShim = Deno.build.os !== "linux" || built !== undefined;
if (noShim) {
  console.log(
    `skipping the IPv6-less host test: cannot build the LD_PRELOAD shim (${
      built ?? Deno.build.os
    })`,
  );
  await Deno.remove(shimDir, { recursive: true });
}

Deno.test({
  name: "a host without IPv6: one warning, then IPv4 is served",
  ignore: noShim,
  async fn() {
    try {
      const echod = await startEchod([], {
        shellPrefix: `export LD_PRELOAD=${shimDir}/no_ipv6.so`,
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
