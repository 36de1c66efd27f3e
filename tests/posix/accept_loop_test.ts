/**
 * Descriptor exhaustion under `ulimit -n`: the accept loop backs off and
 * accepts again. POSIX only: Windows has no per-process descriptor limit
 * (the Windows lane leaves this folder out).
 */

import assert from "node:assert/strict";
import { closeQuietly, connect, roundTrip } from "../_client.ts";
import { linuxOnly, startEchod } from "../_echod.ts";

Deno.test({
  name: "the accept loop survives descriptor exhaustion and accepts again",
  ignore: linuxOnly("the accept-loop exhaustion test", "ulimit and /proc"),
}, async () => {
  // bash sets both soft and hard limits, so Deno cannot raise it back.
  const echod = await startEchod(["--log-level", "debug"], {
    shellPrefix: "ulimit -n 32",
  });
  const held: Deno.Conn[] = [];
  try {
    // More clients than echod has descriptors: the kernel completes the
    // handshakes, echod's accept() fails with EMFILE.
    for (let i = 0; i < 48; i++) {
      held.push(await connect("127.0.0.1", echod.port));
    }
    const failure = await echod.waitForMessage("accept failed");
    assert.equal(failure.level, "ERROR");
    assert.match(String(failure.error), /too many open files/i);

    held.splice(0).forEach(closeQuietly);
    // Every backlogged connection is eventually accepted (and then seen
    // closed), and a new one is echoed.
    const fresh = await connect("::1", echod.port);
    assert.equal(await roundTrip(fresh, "alive"), "alive");
    fresh.close();
  } finally {
    held.forEach(closeQuietly);
    await echod.stop();
  }
  const stopped = await echod.waitForMessage("stopped");
  assert.ok((stopped.acceptErrors as number) > 0);
  assert.equal(stopped.accepted, 49);
});
