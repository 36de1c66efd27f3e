/**
 * The echo loop's buffer policy, in-process, against a scripted connection
 * that records the buffer offered to each read: small while waiting, large
 * (and pooled) while streaming, reused rather than reallocated.
 */

import assert from "node:assert/strict";
import { BufferPool, pump, type Tally } from "../lib/serve/pump.ts";

/** A connection whose reads deliver `chunks` in order, then EOF; echoes are collected. */
class ScriptedConn {
  offered: Uint8Array[] = [];
  written = 0;
  #chunks: number[];

  constructor(chunks: number[]) {
    this.#chunks = [...chunks];
  }

  read(buf: Uint8Array): Promise<number | null> {
    this.offered.push(buf);
    const next = this.#chunks.shift();
    if (next === undefined) return Promise.resolve(null);
    const n = Math.min(next, buf.length);
    if (n < next) this.#chunks.unshift(next - n); // the rest stays in the socket
    buf.fill(7, 0, n);
    return Promise.resolve(n);
  }

  write(data: Uint8Array): Promise<number> {
    this.written += data.length;
    return Promise.resolve(data.length);
  }
}

async function run(
  chunks: number[],
  state: Tally = { bytesIn: 0, bytesOut: 0 },
  pool = new BufferPool(),
) {
  const conn = new ScriptedConn(chunks);
  await pump(conn as unknown as Deno.Conn, state, { pool });
  return { conn, state, sizes: conn.offered.map((b) => b.length) };
}

Deno.test("pump() 64-byte messages stay on the 256-byte buffer, one read each", async () => {
  const { sizes, conn } = await run(new Array(20).fill(64));
  assert.ok(sizes.every((s) => s === 256), String(sizes));
  assert.equal(sizes.length, 20 + 1); // + the EOF read
  assert.ok(conn.offered.every((b) => b === conn.offered[0]), "the buffer was reallocated");
});

Deno.test("pump() 512-byte messages settle on one 1 KiB buffer after the first", async () => {
  const { sizes, conn } = await run(new Array(20).fill(512));
  // First message: 256 B fills, a pooled buffer takes the rest; then one read per message.
  assert.deepEqual(sizes.slice(0, 3), [256, 65_024, 1024]);
  assert.equal(sizes.length, 20 + 1 + 1); // + the split first message + the EOF read
  const ones = conn.offered.filter((b) => b.length === 1024);
  assert.ok(ones.every((b) => b === ones[0]), "the 1 KiB buffer was reallocated");
  assert.equal(conn.written, 20 * 512);
});

Deno.test("pump() 1,500-byte messages settle on one 4 KiB buffer, reused, one read each", async () => {
  const { conn, sizes } = await run(new Array(20).fill(1500));
  assert.deepEqual(sizes.slice(0, 3), [256, 65_024, 4096]);
  assert.equal(sizes.length, 20 + 1 + 1);
  const fours = conn.offered.filter((b) => b.length === 4096);
  assert.ok(fours.every((b) => b === fours[0]), "the 4 KiB buffer was reallocated");
});

Deno.test("pump() sizes that alternate keep the larger buffer, without reallocating", async () => {
  const chunks = [600];
  for (let i = 0; i < 20; i++) chunks.push(100, 600);
  const { conn, sizes } = await run(chunks);
  const after = conn.offered.slice(2, -1);
  assert.ok(after.every((b) => b === after[0] && b.length === 1024), String(sizes));
});

Deno.test("pump() the buffer shrinks after 8 smaller bursts in a row", async () => {
  const { sizes } = await run([1500, 1500, ...new Array(10).fill(10)]);
  // After the split first burst: the second on 4 KiB, the 8 small bursts
  // that vote to shrink still on 4 KiB, then 256 B (the last two and EOF).
  assert.deepEqual(sizes.slice(2), [...new Array(9).fill(4096), 256, 256, 256]);
});

Deno.test("pump() a stream climbs to the pooled buffer, and its pause waits on 4 KiB at most", async () => {
  // A burst of 1 MiB arrives as fast as it is read, then the peer pauses
  // (the short read), then sends a little more.
  const pool = new BufferPool();
  const { sizes } = await run([1 << 20, 100], undefined, pool);
  assert.equal(Math.max(...sizes), 65_024);
  const afterBurst = sizes.lastIndexOf(65_024) + 1;
  assert.ok(sizes.slice(afterBurst).every((s) => s <= 4096), String(sizes));
  assert.equal(pool.lent, 0, "the pooled buffer went back at the pause");
});

Deno.test("pump() after a large burst it waits on 1 KiB, so a 64 KiB segment takes two reads", async () => {
  const { sizes } = await run([65_483, 65_483, 10]);
  // 256 B fills, one pooled buffer does not finish the segment, a third read does.
  assert.deepEqual(sizes.slice(0, 3), [256, 65_024, 65_024]);
  // From then on: 1 KiB, then the pooled buffer finishes the next segment.
  assert.deepEqual(sizes.slice(3), [1024, 65_024, 1024, 1024]);
});

Deno.test("pump() an idle connection waits on at most 4 KiB whatever it sent before", async () => {
  for (const message of [64_000, 65_024 * 3 + 7, 1_000_000]) {
    const pool = new BufferPool();
    const { sizes } = await run([message, 10, 5000], undefined, pool);
    // The reads that wait (after each drained burst) are on the small or the 4 KiB buffer.
    const waiting = [sizes[sizes.length - 1]];
    assert.ok(waiting.every((s) => s <= 4096), `${message}: ${sizes}`);
    assert.equal(pool.lent, 0);
  }
});

Deno.test("pump() pooled buffers are reused, and bounded: past the limit a burst goes on in 4 KiB", async () => {
  const pool = new BufferPool({ limit: 1 });
  const first = await run([200_000, 10, 200_000], undefined, pool);
  const big = first.conn.offered.filter((b) => b.length === 65_024);
  assert.ok(big.length > 2 && big.every((b) => b === big[0]), "one pooled buffer, reused");
  const held = pool.take()!; // the only one, now lent elsewhere
  const starved = await run([200_000], undefined, pool);
  assert.equal(Math.max(...starved.sizes), 4096);
  assert.equal(starved.conn.written, 200_000);
  pool.give(held);
  assert.equal(pool.lent, 0);
});

Deno.test("pump() a connection that fails mid-burst gives its pooled buffer back", async () => {
  const pool = new BufferPool();
  const conn = new ScriptedConn([200_000]);
  let writes = 0;
  conn.write = (data: Uint8Array) => {
    if (++writes === 3) return Promise.reject(new Deno.errors.BrokenPipe("gone"));
    return Promise.resolve(data.length);
  };
  await assert.rejects(pump(conn as unknown as Deno.Conn, { bytesIn: 0, bytesOut: 0 }, { pool }));
  assert.equal(pool.lent, 0);
});

Deno.test("pump() bytes read before the loop (after a PROXY header) are echoed first", async () => {
  const conn = new ScriptedConn([10]);
  const state: Tally = { bytesIn: 0, bytesOut: 0 };
  await pump(conn as unknown as Deno.Conn, state, { early: new Uint8Array(5) });
  assert.equal(conn.written, 15);
  assert.equal(state.bytesIn, 15);
});
