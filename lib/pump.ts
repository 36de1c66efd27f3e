/**
 * The echo loop: read → write → read, one connection at a time.
 *
 * Backpressure comes from the shape of the loop: nothing is read while a
 * write is pending, so a peer that does not read stalls only itself, and
 * echod holds at most one buffer of its data.
 *
 * The buffer adapts: every connection starts on a small one (so an idle
 * connection costs little), grows fourfold each time a read fills it (so a
 * bulk stream reaches full speed in a few reads), and returns to the small
 * one after a few reads that the small one could have held. Buffers are
 * allocated only when the size changes, never per chunk.
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

/** Default size a busy connection's buffer may grow to. */
export const DEFAULT_MAX_BUFFER = 65536;

// Reads in a row that fit the small buffer before a grown one is let go:
// enough that traffic alternating between sizes does not reallocate per chunk.
const SHRINK_AFTER = 4;

/**
 * Echoes everything read from `conn` back to it until the peer closes its
 * writing side, then returns; every byte read has been written by then.
 * Rejects when the connection fails or is closed under it. Does not close
 * `conn`: its owner does.
 */
export async function pump(
  conn: Deno.Conn,
  tally: Tally,
  options: PumpOptions = {},
): Promise<void> {
  const totals = options.totals ?? { bytesIn: 0, bytesOut: 0 };
  const max = options.maxBuffer ?? DEFAULT_MAX_BUFFER;
  const small = new Uint8Array(options.minBuffer ?? DEFAULT_MIN_BUFFER);
  let buf = small;
  // A view of the bytes last read; rebuilt only when their count changes,
  // so fixed-size traffic reuses one view.
  let view = buf;
  let fits = 0;
  if (options.early !== undefined && options.early.length > 0) {
    const early = options.early;
    tally.bytesIn += early.length;
    totals.bytesIn += early.length;
    for (let sent = 0; sent < early.length;) {
      const w = await conn.write(early.subarray(sent));
      sent += w;
      tally.bytesOut += w;
      totals.bytesOut += w;
    }
  }
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return;
    tally.bytesIn += n;
    totals.bytesIn += n;
    if (view.length !== n || view.buffer !== buf.buffer) {
      view = n === buf.length ? buf : buf.subarray(0, n);
    }
    for (let sent = 0; sent < n;) {
      const w = await conn.write(sent === 0 ? view : view.subarray(sent));
      sent += w;
      tally.bytesOut += w;
      totals.bytesOut += w;
    }
    if (n === buf.length) {
      fits = 0;
      if (buf.length < max) buf = new Uint8Array(Math.min(buf.length * 4, max));
    } else if (buf !== small && n <= small.length) {
      if (++fits === SHRINK_AFTER) {
        fits = 0;
        buf = small;
      }
    } else {
      fits = 0;
    }
  }
}
