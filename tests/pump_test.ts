/**
 * The echo loop's buffer policy, in-process, against a scripted connection
 * that records the buffer offered to each read: small while waiting, large
 * while streaming, reused rather than reallocated.
 */

import assert from "node:assert/strict";
import { pump, type PumpState } from "../lib/pump.ts";

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

async function run(chunks: number[], state: PumpState = { bytesIn: 0, bytesOut: 0 }) {
  const conn = new ScriptedConn(chunks);
  await pump(conn as unknown as Deno.Conn, state);
  return { conn, state, sizes: conn.offered.map((b) => b.length) };
}

Deno.test("pump: 512-byte messages stay on the 1 KiB buffer", async () => {
  const { sizes, conn } = await run(new Array(20).fill(512));
  assert.ok(sizes.every((s) => s === 1024), String(sizes));
  assert.equal(conn.written, 20 * 512);
});

Deno.test("pump: 1,500-byte messages settle on one 4 KiB buffer, reused, one read each", async () => {
  const { conn, sizes } = await run(new Array(20).fill(1500));
  // First message: 1 KiB fills, then 4 KiB takes the rest; then one read per message.
  assert.deepEqual(sizes.slice(0, 3), [1024, 4096, 4096]);
  assert.equal(sizes.length, 20 + 1 + 1); // + the split first message + the EOF read
  const fours = conn.offered.filter((b) => b.length === 4096);
  assert.ok(fours.every((b) => b === fours[0]), "the 4 KiB buffer was reallocated");
});

Deno.test("pump: a stream grows to the largest buffer, and its pause waits on the small one", async () => {
  // A burst of 1 MiB arrives as fast as it is read, then the peer pauses
  // (the short read), then sends a little more.
  const { sizes } = await run([1 << 20, 100]);
  const largest = Math.max(...sizes);
  assert.equal(largest, 65_024);
  // After the burst is drained, the read that waits is the small one.
  const afterBurst = sizes.indexOf(1024, 1);
  assert.ok(afterBurst > 0, String(sizes));
  assert.ok(sizes.slice(afterBurst).every((s) => s === 1024), String(sizes));
});

Deno.test("pump: a stream resuming after a pause goes straight back to its large buffer", async () => {
  const { sizes } = await run([300_000, 1024 + 200_000]);
  const pause = sizes.indexOf(1024, sizes.indexOf(65_024));
  assert.equal(sizes[pause + 1], 65_024, String(sizes));
});

Deno.test("pump: the buffers it keeps are on the state, for the owner to drop when quiet", async () => {
  const state: PumpState = { bytesIn: 0, bytesOut: 0 };
  await run([200_000], state);
  assert.equal(state.spare?.length, 65_024);
  assert.equal(state.bulk, true);
  assert.equal(state.bytesIn, 200_000);
  assert.equal(state.bytesOut, 200_000);
  // Dropped by the owner, the loop starts over from the small buffer.
  const { sizes } = await run([100], { bytesIn: 0, bytesOut: 0 });
  assert.deepEqual(sizes, [1024, 1024]);
});

Deno.test("pump: bytes read before the loop (after a PROXY header) are echoed first", async () => {
  const conn = new ScriptedConn([10]);
  const state: PumpState = { bytesIn: 0, bytesOut: 0 };
  await pump(conn as unknown as Deno.Conn, state, { early: new Uint8Array(5) });
  assert.equal(conn.written, 15);
  assert.equal(state.bytesIn, 15);
});
