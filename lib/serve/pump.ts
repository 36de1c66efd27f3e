/**
 * The echo loop: read → write → read, one connection at a time.
 *
 * Backpressure comes from the shape of the loop: nothing is read while a
 * write is pending, so a peer that does not read stalls only itself, and
 * echod holds at most one buffer of its data.
 *
 * Buffers follow the traffic: a read that fills its buffer means more is
 * waiting, so the next read gets a 63.5 KiB buffer borrowed from a pool
 * shared by the server (or the connection's own 4 KiB one when the pool is
 * empty). A read that does not fill its buffer means the socket is drained
 * and the next read may wait for a long time: the borrowed buffer goes back
 * to the pool, and the read waits on a 4 KiB buffer of the connection's own
 * if the burst was between 1 and 4 KiB (messages of that size then take one
 * read each), else on the 1 KiB one. So an idle connection holds
 * at most 5 KiB whatever it sent before (1 KiB after large messages), the
 * pool bounds what all busy connections hold together, and steady traffic
 * allocates nothing.
 *
 * @module
 */

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
   * Bytes of the buffer a connection starts and idles with.
   * @default {1024}
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

/** Default size of the buffer a connection starts and idles with. */
export const DEFAULT_MIN_BUFFER = 1024;

/** Size of the connection's own second buffer, the most an idle connection waits on. */
export const MEDIUM_BUFFER = 4096;

/**
 * Default size of a pooled buffer: 64 KiB less 512 bytes. Not a power of
 * two on purpose: a read that fills the buffer is taken to mean more is
 * waiting, and a transfer sent in power-of-two chunks then rarely ends
 * exactly at a full read, which would leave the connection waiting on a
 * pooled buffer.
 */
export const DEFAULT_MAX_BUFFER = 65_024;

/** Default number of large buffers a pool lends at once: about 16 MiB. */
export const DEFAULT_POOL_BUFFERS = 256;

/** Options for {@linkcode BufferPool}. */
export interface BufferPoolOptions {
  /**
   * Bytes per buffer.
   * @default {65024}
   */
  size?: number;
  /**
   * Most buffers in existence at once; past it, a burst goes on with its
   * connection's own 4 KiB buffer.
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
  const small = new Uint8Array(options.minBuffer ?? DEFAULT_MIN_BUFFER);
  // Kept while the connection's bursts are of middling size, dropped when they are not.
  let medium: Uint8Array<ArrayBuffer> | undefined;
  let borrowed: Uint8Array<ArrayBuffer> | undefined;
  let buf = small;
  // A view of the bytes last read; rebuilt only when their count changes,
  // so fixed-size traffic reuses one view.
  let view = buf;
  // Bytes read since the socket was last found drained.
  let burst = 0;
  try {
    if (options.early !== undefined && options.early.length > 0) {
      state.bytesIn += options.early.length;
      totals.bytesIn += options.early.length;
      await writeCounted(conn, options.early, state, totals);
    }
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return;
      state.bytesIn += n;
      totals.bytesIn += n;
      if (view.length !== n) {
        view = n === buf.length ? buf : buf.subarray(0, n);
      }
      for (let sent = 0; sent < n;) {
        const w = await conn.write(sent === 0 ? view : view.subarray(sent));
        sent += w;
        state.bytesOut += w;
        totals.bytesOut += w;
      }
      burst += n;
      if (n === buf.length) {
        // Full: more is probably waiting; read it in a pooled buffer (the
        // connection's 4 KiB one when the pool is empty).
        if (borrowed === undefined && buf.length < pool.size) {
          borrowed = pool.take();
          buf = borrowed ?? (medium ??= new Uint8Array(MEDIUM_BUFFER));
        }
      } else {
        // Drained: the next read may wait a long time. It waits on 4 KiB
        // if the burst was of middling size, else on 1 KiB.
        if (borrowed !== undefined) {
          pool.give(borrowed);
          borrowed = undefined;
        }
        const middling = burst > small.length && burst <= MEDIUM_BUFFER;
        if (middling) medium ??= new Uint8Array(MEDIUM_BUFFER);
        else medium = undefined;
        buf = middling ? medium! : small;
        burst = 0;
      }
      // Let go of the last chunk's view too, or it would keep a returned buffer.
      if (view.buffer !== buf.buffer) view = buf;
    }
  } finally {
    if (borrowed !== undefined) pool.give(borrowed);
  }
}

/** Writes all of `data`, advancing both tallies. */
async function writeCounted(conn: Deno.Conn, data: Uint8Array, state: Tally, totals: Tally) {
  for (let sent = 0; sent < data.length;) {
    const w = await conn.write(data.subarray(sent));
    sent += w;
    state.bytesOut += w;
    totals.bytesOut += w;
  }
}
