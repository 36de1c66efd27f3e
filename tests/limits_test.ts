/**
 * Connection limits and timeouts, each against a spawned echod. (The
 * accept loop under descriptor exhaustion: `posix/accept_loop_test.ts`.)
 */

import assert from "node:assert/strict";
import { closedByPeer, closeQuietly, connect, MAPPED_LOOPBACK, roundTrip } from "./_client.ts";
import { type Echod, type LogRecord, startEchod } from "./_echod.ts";
import { poll } from "./_poll.ts";

function closes(echod: Echod, count: number): Promise<LogRecord> {
  let seen = 0;
  return echod.waitFor((r) => r.message.startsWith("close ") && ++seen === count);
}

Deno.test("--max-conns refuses the connection past the limit at once, then admits again", async () => {
  const echod = await startEchod(["--max-conns", "2", "--log-level", "debug"]);
  const open: Deno.Conn[] = [];
  try {
    for (const host of ["127.0.0.1", "::1"]) {
      const conn = await connect(host, echod.port);
      assert.equal(await roundTrip(conn, "in"), "in");
      open.push(conn);
    }
    const third = await connect("127.0.0.1", echod.port);
    assert.ok(await closedByPeer(third), "third connection was not closed");
    third.close();
    const refusal = await echod.waitForMessage("refused");
    assert.equal(refusal.reason, "max-conns");
    assert.equal(refusal.refused, 1);

    open.shift()!.close();
    await closes(echod, 1);
    const again = await connect("127.0.0.1", echod.port);
    assert.equal(await roundTrip(again, "back"), "back");
    open.push(again);
  } finally {
    open.forEach(closeQuietly);
    await echod.stop();
  }
  const stopped = await echod.waitForMessage("stopped");
  assert.equal(stopped.refusedMaxConns, 1);
  assert.equal(stopped.accepted, 4);
});

Deno.test("--max-conns-per-ip counts IPv4-mapped peers as their IPv4 address", async () => {
  const echod = await startEchod(["--max-conns-per-ip", "2"]);
  const open: Deno.Conn[] = [];
  try {
    // 127.0.0.1 twice, once through an IPv4-mapped IPv6 socket.
    for (const host of ["127.0.0.1", MAPPED_LOOPBACK]) {
      const conn = await connect(host, echod.port);
      assert.equal(await roundTrip(conn, "ok"), "ok");
      open.push(conn);
    }
    const third = await connect("127.0.0.1", echod.port);
    assert.ok(
      await closedByPeer(third),
      "third connection from 127.0.0.1 was not closed",
    );
    third.close();
    const refusal = await echod.waitForMessage("refused");
    assert.equal(refusal.ip, "127.0.0.1");
    assert.equal(refusal.reason, "max-conns-per-ip");
    // Another address has its own allowance.
    const other = await connect("::1", echod.port);
    assert.equal(await roundTrip(other, "::1"), "::1");
    open.push(other);
  } finally {
    open.forEach(closeQuietly);
    await echod.stop();
  }
});

Deno.test("--idle-timeout closes a quiet connection and spares a busy one", async () => {
  const echod = await startEchod([
    "--idle-timeout",
    "400ms",
    "--log-level",
    "debug",
  ]);
  const quiet = await connect("127.0.0.1", echod.port);
  const busy = await connect("::1", echod.port);
  try {
    assert.equal(await roundTrip(quiet, "x"), "x");
    const quietSince = performance.now();
    let busyClosed = false;
    const chatter = (async () => {
      // One byte every 100 ms: traffic the idle timer must see.
      while (!busyClosed) {
        assert.equal(await roundTrip(busy, "."), ".");
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    assert.ok(await closedByPeer(quiet));
    const waited = performance.now() - quietSince;
    busyClosed = true;
    await chatter;
    assert.ok(
      waited >= 380,
      `closed after ${waited.toFixed(0)} ms, before the timeout`,
    );
    assert.ok(
      waited < 2_000,
      `closed after ${waited.toFixed(0)} ms, long after the timeout`,
    );
    const close = await echod.waitFor((r) => r.reason === "idle-timeout");
    assert.equal(close.bytesIn, 1);
    assert.equal(close.bytesOut, 1);
    // The busy one is still served.
    assert.equal(await roundTrip(busy, "still here"), "still here");
  } finally {
    closeQuietly(quiet);
    closeQuietly(busy);
    await echod.stop();
  }
});

Deno.test("--max-lifetime closes even a busy connection", async () => {
  const echod = await startEchod([
    "--max-lifetime",
    "500ms",
    "--idle-timeout",
    "0",
    "--log-level",
    "debug",
  ]);
  const conn = await connect("127.0.0.1", echod.port);
  const opened = performance.now();
  try {
    // Ticks until echod closes it (a failed round trip is the close).
    await poll(
      async () => (await roundTrip(conn, "tick").catch(() => "")) !== "tick" || undefined,
      { what: "echod to close the connection at its lifetime", timeoutMs: 10_000 },
    );
    const lived = performance.now() - opened;
    assert.ok(lived >= 480 && lived < 3_000, `lived ${lived.toFixed(0)} ms`);
    await echod.waitFor((r) => r.reason === "max-lifetime");
  } finally {
    closeQuietly(conn);
    await echod.stop();
  }
});
