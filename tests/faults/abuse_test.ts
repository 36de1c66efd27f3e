/**
 * Abusive clients: slowloris, slow readers and connection floods, each
 * against a spawned echod, with a well-behaved client checked alongside.
 * (Descriptor exhaustion: `posix/exhaustion_test.ts`.)
 */

import assert from "node:assert/strict";
import {
  closedByPeer,
  closeQuietly,
  connect,
  openMany,
  pattern,
  roundTrip,
  writeAll,
} from "../_client.ts";
import { memoryUnreadable, skipUnless, startEchod, WINE } from "../_echod.ts";
import { finalCounters } from "../_metrics.ts";
import { poll, untilStalled } from "../_poll.ts";

/** Round-trip times of `count` 64-byte messages on one fresh connection, in ms, sorted. */
async function latencies(port: number, count: number): Promise<number[]> {
  const conn = await connect("127.0.0.1", port);
  const times: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const began = performance.now();
      assert.equal(await roundTrip(conn, "x".repeat(64)), "x".repeat(64));
      times.push(performance.now() - began);
    }
  } finally {
    conn.close();
  }
  return times.sort((a, b) => a - b);
}

function p99(sorted: number[]): number {
  return sorted[Math.floor(sorted.length * 0.99)];
}

// Under Wine every socket call goes through its wineserver, and 2,000
// connections take longer to open than the idle timeout: the Windows lane
// holds fewer for longer.
const WINDOWS = Deno.build.os === "windows";
const SLOW_CLIENTS = WINDOWS ? 500 : 2_000;
const SLOW_IDLE_MS = WINDOWS ? 8_000 : 2_000;

Deno.test(`slowloris: ${SLOW_CLIENTS} near-silent connections close at --idle-timeout; a good client keeps its latency`, async () => {
  const echod = await startEchod([
    "--idle-timeout",
    `${SLOW_IDLE_MS}ms`,
    "--max-conns",
    "0",
    "--max-conns-per-ip",
    "0",
  ]);
  const before = await latencies(echod.port, 200);
  // Each sends its one byte as soon as it is open (the next would be due in
  // a minute): opening them all can take longer than the idle timeout.
  const slow = await openMany(echod.port, SLOW_CLIENTS, async (conn) => {
    await writeAll(conn, new Uint8Array([1]));
    const one = new Uint8Array(1);
    assert.equal(await conn.read(one), 1);
  });
  try {
    const quietSince = performance.now();
    const during = await latencies(echod.port, 200);
    assert.ok(
      p99(during) < Math.max(20, 5 * p99(before)),
      `p99 ${p99(during).toFixed(2)} ms with ${SLOW_CLIENTS} slow clients, ${
        p99(before).toFixed(2)
      } ms before`,
    );
    const closed = await Promise.all(slow.map(closedByPeer));
    const after = performance.now() - quietSince;
    assert.ok(closed.every((c) => c), "a slow connection was not closed by echod");
    assert.ok(
      after >= SLOW_IDLE_MS - 100 && after < 3 * SLOW_IDLE_MS,
      `closed after ${after.toFixed(0)} ms`,
    );
  } finally {
    slow.forEach(closeQuietly);
  }
  const totals = await finalCounters(echod, ["idleTimeouts"]);
  assert.equal(totals.idleTimeouts, SLOW_CLIENTS);
});

Deno.test({
  name: "slow readers: 20 clients that write and never read leave memory bounded and others served",
  ignore: memoryUnreadable("the slow-readers test") ||
    skipUnless(
      !WINE,
      "the slow-readers test",
      "under Wine the flood of 20 writers of 64 MiB ended the test process without a result (only Wine skips it)",
    ),
}, async () => {
  const echod = await startEchod(["--idle-timeout", "3s"]);
  const baseline = await echod.rss();
  const readers = await openMany(echod.port, 20);
  const MiB = 1024 * 1024;
  const written = new Array(20).fill(0);
  // Each writes up to 64 MiB; the writes stall once buffers fill.
  const writers = readers.map(async (conn, i) => {
    const chunk = pattern(MiB, i + 1);
    try {
      for (let n = 0; n < 64; n++) {
        await writeAll(conn, chunk);
        written[i] += MiB;
      }
    } catch {
      // Closed by echod at the idle timeout: expected.
    }
  });
  try {
    const total = () => written.reduce((a, b) => a + b, 0);
    await untilStalled(total, { what: "the writers to stall", timeoutMs: 60_000, intervalMs: 300 });
    assert.ok(total() < 20 * 64 * MiB, "the writers never stalled");
    const growth = (await echod.rss()) - baseline;
    // At most one 64 KiB buffer per slow reader is held by echod.
    assert.ok(growth < 48 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB`);
    const times = await latencies(echod.port, 100);
    assert.ok(p99(times) < 50, `p99 ${p99(times).toFixed(2)} ms beside the slow readers`);
    // Stalled both ways, they count as idle and are closed.
    await Promise.all(writers);
  } finally {
    readers.forEach(closeQuietly);
  }
  const totals = await finalCounters(echod, ["idleTimeouts"]);
  assert.equal(totals.idleTimeouts, 20);
});

Deno.test("a flood past --max-conns and --max-conns-per-ip is refused at once, counted, logged sparingly", async () => {
  const echod = await startEchod([
    "--max-conns",
    "100",
    "--max-conns-per-ip",
    "60",
  ]);
  const open: Deno.Conn[] = [];
  try {
    const attempts = await Promise.all(
      Array.from({ length: 600 }, async (_, i) => {
        const host = i % 2 ? "::1" : "127.0.0.1";
        const conn = await connect(host, echod.port);
        try {
          const echoed = await roundTrip(conn, "hi");
          open.push(conn);
          return { host, admitted: echoed === "hi" };
        } catch {
          conn.close();
          return { host, admitted: false };
        }
      }),
    );
    const admitted = attempts.filter((a) => a.admitted);
    assert.equal(admitted.length, 100);
    for (const host of ["::1", "127.0.0.1"]) {
      assert.ok(admitted.filter((a) => a.host === host).length <= 60, `${host} over its limit`);
    }
    // The admitted still echo.
    for (const conn of open.slice(0, 10)) assert.equal(await roundTrip(conn, "ok"), "ok");
    const refusalLines = echod.records.filter((r) => r.message.startsWith("refused"));
    assert.ok(refusalLines.length >= 1 && refusalLines.length <= 2, `${refusalLines.length} lines`);
    // After the flood, room again.
    open.splice(0).forEach(closeQuietly);
    const again = await poll(async () => {
      const conn = await connect("127.0.0.1", echod.port);
      try {
        assert.equal(await roundTrip(conn, "back"), "back");
        return conn;
      } catch (error) {
        conn.close(); // echod has not seen the closes yet
        throw error;
      }
    }, { what: "echod to admit again after the flood", timeoutMs: 5_000, intervalMs: 10 });
    again.close();
  } finally {
    open.forEach(closeQuietly);
  }
  const totals = await finalCounters(echod, [
    "refusedMaxConns",
    "refusedMaxConnsPerIp",
    "accepted",
  ]);
  const refused = totals.refusedMaxConns + totals.refusedMaxConnsPerIp;
  assert.ok(refused >= 500, `${refused} refusals counted`);
  // Admitted: the 100 of the flood and the one after it.
  assert.equal(totals.accepted - refused, 101);
});
