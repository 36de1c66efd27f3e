/**
 * The echo loop: read → write → read, one connection at a time.
 *
 * Backpressure comes from the shape of the loop: nothing is read while a
 * write is pending, so a peer that does not read stalls only itself, and
 * echod holds at most one buffer of its data.
 *
 * The buffer adapts. A read that fills its buffer means more is waiting, so
 * the next read gets a bigger one (1 KiB → 4 KiB → 16 KiB → up to 64 KiB).
 * A read that does not fill it means the socket is drained and the next
 * read may wait a long time: it gets the smallest buffer that held the whole
 * burst if the peer sends messages (up to 64 KiB), or the 1 KiB one if it
 * is streaming (it has filled a 64 KiB read) and paused. So an idle connection holds only a small buffer
 * while a stream runs with 64 KiB reads. The grown buffers are kept between
 * bursts (no allocation per chunk) until the owner finds the connection
 * quiet and drops them.
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

/** A connection's counters and the buffers its loop keeps between bursts. */
export interface PumpState extends Tally {
  /**
   * The grown buffers kept between bursts, so that steady traffic of any
   * size allocates nothing. The owner should drop both when the connection
   * goes quiet: an idle connection then holds only its pending read's buffer.
   */
  middle?: Uint8Array<ArrayBuffer>;
  /** See `middle`: the largest buffer, from 4× middle up to `maxBuffer`. */
  spare?: Uint8Array<ArrayBuffer>;
  /**
   * Set once a read fills the largest buffer: the peer is streaming, and a
   * pause is answered with the small buffer. The owner clears it with the buffers.
   */
  bulk?: boolean;
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
   * Bytes a busy connection's buffer may grow to.
   * @default {65536}
   */
  maxBuffer?: number;
  /**
   * Bytes already read from the peer (after a PROXY header, say), echoed
   * before the loop starts.
   * @default {undefined}
   */
  early?: Uint8Array;
}

/** Default size of the buffer a connection starts and idles with. */
export const DEFAULT_MIN_BUFFER = 1024;

/**
 * Default size a busy connection's buffer may grow to: 64 KiB less 512
 * bytes. Not a power of two on purpose: a read that fills the buffer is
 * taken to mean more is waiting, and a transfer sent in power-of-two chunks
 * then rarely ends exactly at a full read, which would leave the idle
 * connection waiting on its largest buffer (measured, 2,000 transfers of
 * 256 KiB: 22% with 65,536, under 3% with 65,024).
 */
export const DEFAULT_MAX_BUFFER = 65_024;

/** The next buffer up from `buf`: small → middle → spare, growing fourfold to `max`. */
function bigger(
  buf: Uint8Array<ArrayBuffer>,
  small: Uint8Array<ArrayBuffer>,
  max: number,
  kept: PumpState,
): Uint8Array<ArrayBuffer> {
  if (buf === small) {
    // A stream resuming after a pause goes straight back to its largest buffer.
    if (kept.bulk && kept.spare !== undefined) return kept.spare;
    return kept.middle ??= new Uint8Array(small.length * 4);
  }
  if (buf.length >= max) return buf;
  if (kept.spare !== undefined && kept.spare.length > buf.length) return kept.spare;
  return kept.spare = new Uint8Array(Math.min(buf.length * 4, max));
}

/** A buffer for the read after a drained one: fits `burst`, in sizes small × 4^k up to `max`. */
function fitting(
  burst: number,
  small: Uint8Array<ArrayBuffer>,
  max: number,
  kept: PumpState,
): Uint8Array<ArrayBuffer> {
  if (burst <= small.length || burst > max) return small;
  // Reallocated only when the burst no longer fits, or is far smaller than
  // the buffer: message sizes that wander allocate rarely, and a connection
  // whose messages shrank does not wait on a big buffer.
  if (kept.middle === undefined || kept.middle.length < burst || kept.middle.length > 16 * burst) {
    let size = small.length * 4;
    while (size < burst) size *= 4;
    kept.middle = new Uint8Array(Math.min(size, max));
  }
  return kept.middle;
}

/**
 * Echoes everything read from `conn` back to it until the peer closes its
 * writing side, then returns; every byte read has been written by then.
 * Rejects when the connection fails or is closed under it. Does not close
 * `conn`: its owner does.
 */
export async function pump(
  conn: Deno.Conn,
  state: PumpState,
  options: PumpOptions = {},
): Promise<void> {
  const totals = options.totals ?? { bytesIn: 0, bytesOut: 0 };
  const max = options.maxBuffer ?? DEFAULT_MAX_BUFFER;
  const small = new Uint8Array(options.minBuffer ?? DEFAULT_MIN_BUFFER);
  let buf = small;
  // A view of the bytes last read; rebuilt only when their count changes,
  // so fixed-size traffic reuses one view.
  let view = buf;
  // Bytes read since the socket was last found drained (a read that did not fill its buffer).
  let burst = 0;
  if (options.early !== undefined && options.early.length > 0) {
    const early = options.early;
    state.bytesIn += early.length;
    totals.bytesIn += early.length;
    for (let sent = 0; sent < early.length;) {
      const w = await conn.write(early.subarray(sent));
      sent += w;
      state.bytesOut += w;
      totals.bytesOut += w;
    }
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
      // Full: more is probably waiting; read it in bigger pieces.
      if (n >= max) state.bulk = true;
      buf = bigger(buf, small, max, state);
    } else {
      // Drained: the next read may wait a long time, so it gets a buffer
      // that fits this burst if it was a message, the small one if it was
      // a bulk transfer pausing (or done).
      buf = state.bulk ? small : fitting(burst, small, max, state);
      burst = 0;
    }
    // Let go of the last chunk's view too, or it would keep a grown buffer alive.
    if (view.buffer !== buf.buffer) view = buf;
  }
}
