/**
 * Descriptor exhaustion under `ulimit -n`, on the plain and the TLS port:
 * no crash, no busy loop, and serving resumes. Linux only (`ulimit` and
 * `/proc`); the Windows lane leaves this folder out (Windows has no
 * per-process descriptor limit).
 */

import assert from "node:assert/strict";
import {
  closedWithin,
  closeQuietly,
  connect,
  echoesBack,
  openMany,
  roundTrip,
} from "../../_client.ts";
import { linuxOnly, startEchod } from "../../_echod.ts";
import { finalCounters } from "../../_metrics.ts";
import { startTlsEchod } from "../../_tls.ts";

Deno.test({
  name: "descriptor exhaustion: no crash, no busy loop, accepting resumes",
  ignore: linuxOnly("the descriptor-exhaustion test", "ulimit and /proc"),
}, async () => {
  const echod = await startEchod([], { shellPrefix: "ulimit -n 64" });
  const held = await openMany(echod.port, 300);
  try {
    await echod.waitForMessage("accept failed");
    // Saturated for a second: the backoff keeps echod nearly idle.
    const cpuBefore = await echod.cpuSeconds();
    await new Promise((r) => setTimeout(r, 1_000));
    const cpu = (await echod.cpuSeconds()) - cpuBefore;
    assert.ok(cpu < 0.2, `echod used ${cpu.toFixed(2)} s of CPU in 1 s while saturated`);
    held.splice(0).forEach(closeQuietly);
    const fresh = await connect("::1", echod.port);
    assert.equal(await roundTrip(fresh, "resumed"), "resumed");
    fresh.close();
  } finally {
    held.forEach(closeQuietly);
  }
  const totals = await finalCounters(echod, ["accepted"]);
  assert.equal(totals.accepted, 301);
  const errorLines = echod.records.filter((r) => r.message.startsWith("accept failed"));
  assert.ok(errorLines.length <= 3, `${errorLines.length} accept-error lines: not rate-limited`);
});

Deno.test({
  name:
    "TLS with --tls-port under a descriptor limit: 300 silent TLS connections do not starve the plain port",
  ignore: linuxOnly("this TLS fault test", "ulimit and /proc"),
  async fn() {
    const echod = await startTlsEchod([
      "--tls-port",
      "0",
      "--tls-handshake-timeout",
      "2s",
    ], { shellPrefix: "ulimit -n 256" });
    try {
      const tlsPort = echod.ready!.tlsPort as number;
      const silent = await Promise.all(
        Array.from({ length: 300 }, () => connect("127.0.0.1", tlsPort)),
      );
      // Refused past --max-conns-per-ip (64) at once; the rest at the deadline.
      const closed = await Promise.all(silent.map((c) => closedWithin(c, 6_000)));
      for (const c of silent) closeQuietly(c);
      assert.equal(closed.filter((ms) => ms < 0).length, 0);
      await echoesBack(await connect("127.0.0.1", echod.port), 1000);
    } finally {
      await echod.stop();
    }
  },
});
