/**
 * A host without IPv6 in its kernel: echod warns once and serves IPv4.
 * Linux only (an LD_PRELOAD shim); the Windows lane leaves this folder out.
 */

import assert from "node:assert/strict";
import { connect, roundTrip } from "../../_client.ts";
import { linuxOnly, ROOT, skipUnless, startEchod } from "../../_echod.ts";
import { has } from "../../_programs.ts";

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
