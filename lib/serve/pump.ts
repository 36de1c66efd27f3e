/**
 * The echo loop: read → write → read, one connection at a time.
 *
 * Backpressure comes from the shape of the loop: nothing is read while a
 * write is pending, so a peer that does not read stalls only itself, and
 * echod holds at most one buffer of its data.
 *
 * Buffers follow the traffic. A connection waits on a buffer of its own,
 * sized to its last burst (the bytes read since the socket was last found
 * drained): the smallest of 256 B, 1 KiB and 4 KiB that holds it in one
 * read, so that messages of steady size take one read each. The buffer
 * grows at once and shrinks only after several bursts in a row would fit a
 * smaller one, so traffic that alternates sizes does not reallocate. A read
 * that fills its buffer means more is waiting: the next read gets a 63.5 KiB
 * buffer borrowed from a pool shared by the server (or a 4 KiB one of the
 * connection's own when the pool is empty), given back as soon as the
 * socket is drained. After a burst larger than 4 KiB the connection waits
 * on 1 KiB: the next one will borrow again. So an idle connection holds
 * 256 B to 4 KiB, the pool bounds what all busy connections hold together,
 * and steady traffic allocates nothing.
 *
 * @module
 */

import { DEFAULT_MAX_BUFFER, DEFAULT_MIN_BUFFER, DEFAULT_POOL_BUFFERS } from "./defaults.ts";

/** Byte counters the loop advances as data moves. */
export interface Tally {
  /** Bytes read from peers. */
  bytesIn: number;
  /** Bytes written back to peers. */
  bytesOut: number;
}

/** Tuning for {@linkcode pump}. */
export interface PumpOptions {
  /**
   * Counters shared by every connection, advanced alongside the connection's own.
   * @default {a private tally}
   */
  totals?: Tally;
  /**
   * Bytes of the smallest buffer a connection waits on, and starts with;
   * the next sizes are four and sixteen times as large, up to 4 KiB.
   * @default {256}
   */
  minBuffer?: number;
  /**
   * Where large buffers are borrowed from during a burst.
   * @default {a pool shared by every pump in this thread}
   */
  pool?: BufferPool;
  /**
   * Bytes already read from the peer (after a PROXY header, say), echoed
   * before the loop starts.
   * @default {undefined}
   */
  early?: Uint8Array;
}

/** Size of the largest buffer of a connection's own: the most an idle connection waits on. */
export const MEDIUM_BUFFER = 4096;

/** Drained bursts in a row that fit a smaller buffer before the connection's own shrinks. */
const SHRINK_AFTER = 8;

/** Options for {@linkcode BufferPool}. */
export interface BufferPoolOptions {
  /**
   * Bytes per buffer.
   * @default {65024}
   */
  size?: number;
  /**
   * Most buffers in existence at once; past it, a burst goes on in a 4 KiB
   * buffer of its connection's own.
   * @default {256}
   */
  limit?: number;
}

/**
 * Large buffers lent to connections while they move a burst. Buffers are
 * made on demand up to a limit and kept for reuse, so the memory of every
 * burst at once is bounded and steady traffic allocates nothing.
 */
export class BufferPool {
  #size: number;
  #limit: number;
  #free: Uint8Array<ArrayBuffer>[] = [];
  #made = 0;

  /** Creates an empty pool. */
  constructor(options: BufferPoolOptions = {}) {
    this.#size = options.size ?? DEFAULT_MAX_BUFFER;
    this.#limit = options.limit ?? DEFAULT_POOL_BUFFERS;
  }

  /** Bytes per buffer. */
  get size(): number {
    return this.#size;
  }

  /** Buffers lent out now. */
  get lent(): number {
    return this.#made - this.#free.length;
  }

  /** Lends a buffer, or returns `undefined` when all `limit` are lent. */
  take(): Uint8Array<ArrayBuffer> | undefined {
    const free = this.#free.pop();
    if (free !== undefined) return free;
    if (this.#made >= this.#limit) return undefined;
    this.#made++;
    return new Uint8Array(this.#size);
  }

  /** Takes back a buffer from {@linkcode BufferPool.take}. */
  give(buf: Uint8Array<ArrayBuffer>): void {
    this.#free.push(buf);
  }
}

let threadPool: BufferPool | undefined;

/**
 * Echoes everything read from `conn` back to it until the peer closes its
 * writing side, then returns; every byte read has been written by then.
 * Rejects when the connection fails or is closed under it. Does not close
 * `conn`: its owner does.
 */
export async function pump(
  conn: Deno.Conn,
  state: Tally,
  options: PumpOptions = {},
): Promise<void> {
  const totals = options.totals ?? { bytesIn: 0, bytesOut: 0 };
  const pool = options.pool ?? (threadPool ??= new BufferPool());
  const least = options.minBuffer ?? DEFAULT_MIN_BUFFER;
  if (!(least >= 1)) throw new RangeError(`minBuffer must be at least 1 byte, not ${least}`);
  // The connection's own buffer, sized to its recent bursts: the one it waits on.
  let own = new Uint8Array(least);
  let borrowed: Uint8Array<ArrayBuffer> | undefined;
  let buf = own;
  // A view of the bytes last read; rebuilt only when their count changes,
  // so fixed-size traffic reuses one view.
  let view: Uint8Array = buf;
  // Bytes of `view` to echo: none before the first read, or the bytes that
  // came with a PROXY header, which take the same path as a read.
  let n = 0;
  if (options.early !== undefined && options.early.length > 0) {
    view = options.early;
    n = view.length;
    state.bytesIn += n;
    totals.bytesIn += n;
  }
  // Bytes read since the socket was last found drained.
  let burst = 0;
  // Drained bursts in a row that a smaller own buffer would have held.
  let smaller = 0;
  try {
    // Echo, adapt the buffer, read: with nothing to echo yet, the first
    // round only reads (own already fits a burst of 0).
    for (;;) {
      // `writeAll` (net.ts) inline: a call would add an async frame per chunk.
      for (let sent = 0; sent < n;) {
        const w = await conn.write(sent === 0 ? view : view.subarray(sent));
        sent += w;
        state.bytesOut += w;
        totals.bytesOut += w;
      }
      burst += n;
      if (n === buf.length) {
        // Full: more is probably waiting; read it in a pooled buffer (in a
        // 4 KiB one of the connection's own when the pool is empty).
        if (borrowed === undefined && buf.length < pool.size) {
          borrowed = pool.take();
          if (borrowed === undefined && own.length < MEDIUM_BUFFER) {
            own = new Uint8Array(MEDIUM_BUFFER);
          }
          buf = borrowed ?? own;
        }
      } else {
        // Drained: the next read may wait a long time, on the smallest own
        // buffer that would have held this burst in one read.
        if (borrowed !== undefined) {
          pool.give(borrowed);
          borrowed = undefined;
        }
        const fit = ownSize(burst, least);
        if (fit === own.length) smaller = 0;
        else if (fit > own.length || ++smaller === SHRINK_AFTER) {
          own = new Uint8Array(fit);
          smaller = 0;
        }
        buf = own;
        burst = 0;
      }
      // Let go of the last chunk's view too, or it would keep a returned buffer.
      if (view.buffer !== buf.buffer) view = buf;
      const read = await conn.read(buf);
      if (read === null) return;
      n = read;
      state.bytesIn += n;
      totals.bytesIn += n;
      if (view.length !== n) {
        view = n === buf.length ? buf : buf.subarray(0, n);
      }
    }
  } finally {
    if (borrowed !== undefined) pool.give(borrowed);
  }
}

/**
 * The own buffer that holds a burst of `burst` bytes in one read without
 * filling it (a full read is taken to mean more is waiting): `least`, four
 * times that, and so on up to 4 KiB. A larger burst gets the second size
 * (1 KiB): the next one is read in a pooled buffer anyway, and 1 KiB plus
 * one pooled buffer hold a whole 64 KiB loopback segment in two reads,
 * where 256 B plus one fall short and take a third.
 */
function ownSize(burst: number, least: number): number {
  for (let size = least; size <= MEDIUM_BUFFER; size *= 4) {
    if (burst < size) return size;
  }
  return least * 4 <= MEDIUM_BUFFER ? least * 4 : least;
}
