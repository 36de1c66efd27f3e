/**
 * A hostile host: the port already taken by another program, over IPv4 or
 * IPv6. (No IPv6 in the kernel: `posix/ipv6_less_test.ts`.)
 */

import assert from "node:assert/strict";
import { runEchod } from "../_echod.ts";

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
