/**
 * Soak: hundreds of concurrent clients with mixed sizes, random chunking
 * and random half-closes, every byte checked; then the same load with a
 * SIGTERM in the middle.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect, pattern, writeAll } from "../_client.ts";
import { startEchod } from "../_echod.ts";
import { finalCounters } from "../_metrics.ts";

const MiB = 1024 * 1024;
// One source of bytes: messages are windows of it at random offsets.
const SOURCE = pattern(3 * MiB, 4242);

interface Tally {
  messages: number;
  bytes: number;
  mismatches: number;
  unexpectedCloses: number;
  closedByShutdown: number;
  refused: number;
}

function random(seed: { s: number }, max: number): number {
  seed.s = (seed.s * 1103515245 + 12345) & 0x7fffffff;
  return seed.s % max;
}

/** A size from 1 B to 1 MiB, spread evenly over the orders of magnitude. */
function size(seed: { s: number }): number {
  return Math.max(1, Math.floor(Math.exp((random(seed, 10_000) / 10_000) * Math.log(MiB))));
}

/**
 * Runs one client until `until()` is false: connect, send a few messages in
 * random chunks while reading their echo, then half-close or close.
 */
async function client(
  port: number,
  id: number,
  until: () => boolean,
  tally: Tally,
  shuttingDown: () => boolean,
): Promise<void> {
  const seed = { s: id * 7919 + 1 };
  while (until()) {
    let conn: Deno.Conn;
    try {
      conn = await connect(id % 2 ? "::1" : "127.0.0.1", port);
    } catch {
      if (!shuttingDown()) throw new Error("connection refused while serving");
      tally.refused++;
      return;
    }
    try {
      const messages = 1 + random(seed, 4);
      for (let m = 0; m < messages && until(); m++) {
        const length = size(seed);
        const offset = random(seed, SOURCE.length - length);
        const data = SOURCE.subarray(offset, offset + length);
        const reading = readUpTo(conn, length);
        for (let at = 0; at < length;) {
          const chunk = Math.min(length - at, 1 + random(seed, 65_536));
          await writeAll(conn, data.subarray(at, at + chunk));
          at += chunk;
        }
        const got = await reading;
        if (Buffer.compare(got, data.subarray(0, got.length)) !== 0) tally.mismatches++;
        if (got.length < length) {
          if (shuttingDown()) tally.closedByShutdown++;
          else tally.unexpectedCloses++;
          break;
        }
        tally.messages++;
        tally.bytes += length;
      }
      if (random(seed, 2) === 0) {
        // Half-close: echod must then close with nothing more to say.
        await conn.closeWrite();
        const rest = await readUpTo(conn, 1);
        if (rest.length !== 0) tally.mismatches++;
      }
    } catch (error) {
      const gone = error instanceof Deno.errors.ConnectionReset ||
        error instanceof Deno.errors.BrokenPipe;
      if (!(gone && shuttingDown())) throw error;
      tally.closedByShutdown++;
    } finally {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  }
}

/** Reads up to `n` bytes, fewer if the peer closes first. */
async function readUpTo(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  try {
    while (got < n) {
      const r = await conn.read(out.subarray(got));
      if (r === null) break;
      got += r;
    }
  } catch (error) {
    // Reset by echod, or closed here after a failed write while this read waited.
    const ended = error instanceof Deno.errors.ConnectionReset ||
      error instanceof Deno.errors.Interrupted || error instanceof Deno.errors.BadResource;
    if (!ended) throw error;
  }
  return out.subarray(0, got);
}

function newTally(): Tally {
  return {
    messages: 0,
    bytes: 0,
    mismatches: 0,
    unexpectedCloses: 0,
    closedByShutdown: 0,
    refused: 0,
  };
}

Deno.test("soak: 200 clients for 15 s, mixed sizes and half-closes, every byte checked", async () => {
  const echod = await startEchod(["--max-conns-per-ip", "0"]);
  const tally = newTally();
  const end = performance.now() + 15_000;
  try {
    await Promise.all(
      Array.from(
        { length: 200 },
        (_, id) => client(echod.port, id, () => performance.now() < end, tally, () => false),
      ),
    );
  } finally {
    const totals = await finalCounters(echod, ["bytesIn", "bytesOut"]);
    assert.equal(totals.bytesIn, totals.bytesOut);
  }
  console.log(
    `soak: ${tally.messages} messages, ${(tally.bytes / MiB).toFixed(0)} MiB echoed and verified`,
  );
  assert.equal(tally.mismatches, 0);
  assert.equal(tally.unexpectedCloses, 0);
  assert.ok(tally.messages > 1_000, `only ${tally.messages} messages`);
});

Deno.test("soak with SIGTERM mid-run: each connection completes or is closed at the drain timeout; exit 0", async () => {
  const echod = await startEchod(["--max-conns-per-ip", "0", "--drain-timeout", "1s"]);
  const tally = newTally();
  let terminated = false;
  const clients = Array.from(
    { length: 200 },
    (_, id) => client(echod.port, id, () => true, tally, () => terminated),
  );
  // And 20 that echo once and then wait: only the drain timeout ends them.
  const lingering = await Promise.all(
    Array.from({ length: 20 }, () => connect("127.0.0.1", echod.port)),
  );
  for (const conn of lingering) {
    await writeAll(conn, SOURCE.subarray(0, 100));
    assert.equal((await readUpTo(conn, 100)).length, 100);
  }
  await new Promise((r) => setTimeout(r, 3_000));
  terminated = true;
  const stopAt = performance.now();
  await echod.requestStop();
  const lingerEnds = Promise.all(lingering.map(async (conn) => {
    const rest = await readUpTo(conn, 1);
    conn.close();
    return { bytes: rest.length, after: performance.now() - stopAt };
  }));
  // None may hang: all end within the drain timeout and a margin.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("a client hung after SIGTERM")), 15_000);
  });
  try {
    await Promise.race([Promise.all(clients), guard]);
  } finally {
    clearTimeout(timer);
  }
  const ends = await lingerEnds;
  for (const end of ends) {
    assert.equal(end.bytes, 0);
    assert.ok(
      end.after >= 900 && end.after < 5_000,
      `closed ${end.after.toFixed(0)} ms after SIGTERM`,
    );
  }
  const { code } = await echod.exited();
  assert.equal(code, 0);
  assert.equal(tally.mismatches, 0);
  assert.equal(tally.unexpectedCloses, 0);
  console.log(
    `after SIGTERM: ${tally.messages} messages completed, ${tally.closedByShutdown} cut at the drain timeout, ${tally.refused} refused once stopped`,
  );
  const cut = await echod.waitForMessage("connections still open");
  assert.ok((cut.active as number) >= 20, cut.message);
  await echod.waitForMessage("stopped");
});
