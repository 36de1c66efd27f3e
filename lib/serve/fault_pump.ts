/**
 * The echo loop of a connection a fault profile was applied to (`--fault`):
 * latency and jitter, a rate, slices, and the cuts (stall, reset, close),
 * or a black hole. The clean loop (`pump.ts`) is never touched: a session
 * runs one loop or the other.
 *
 * Two loops share a queue of chunks, each with the time it is due: the
 * reader stamps what it reads and queues it, the writer sends each chunk
 * when due, in order, in slices and at the rate the profile says. The
 * reader stops while more than {@linkcode MAX_QUEUED} bytes wait, so a fast
 * sender is held back by TCP itself, never buffered without bound. Every
 * byte echoed is a byte read, in order; a cut echoes exactly up to its
 * byte and no further.
 *
 * @module
 */

import type { FaultKey, FaultProfile } from "./fault_spec.ts";
import type { Tally } from "./pump.ts";

/** Bytes waiting to be echoed beyond which a connection's reading stops. */
export const MAX_QUEUED = 64 * 1024;

/** Bytes per read. */
const READ_SIZE = 16 * 1024;

/** Rate pacing works in steps of this many milliseconds' worth of bytes. */
const RATE_STEP_MS = 20;

/** A pause longer than this is idleness: the rate does not let the sender catch up after it. */
const RATE_SLACK_MS = 100;

/** The connection as the loop uses it (a `Deno.Conn`, or a TLS session over one). */
export interface FaultIo {
  /** Reads into `buf`; `null` at the end of the stream. */
  read(buf: Uint8Array): Promise<number | null>;
  /** Writes some of `buf`; resolves with how much. */
  write(buf: Uint8Array): Promise<number>;
  /** Sends a FIN. */
  closeWrite(): Promise<void>;
}

/** A session's byte counts, with the bytes a fault discarded on purpose. */
export interface FaultTally extends Tally {
  /** Bytes read and, by the profile, never to be echoed (a black hole, after a cut). */
  bytesDropped: number;
}

/** What {@linkcode faultPump} needs besides the connection. */
export interface FaultPumpOptions {
  /** The profile. */
  profile: FaultProfile;
  /** Resolves when echod closes the connection (idle timeout, drain, …): the loop then ends. */
  stopped: Promise<void>;
  /** Resets the connection (see `reset.ts`). */
  reset: () => void;
  /**
   * Counters shared by every connection, advanced alongside the session's own.
   * @default {a private tally}
   */
  totals?: Tally;
  /**
   * Bytes already read from the peer (after a PROXY header), echoed first.
   * @default {undefined}
   */
  early?: Uint8Array;
  /** Told each time a cut acts (stall-after, reset-after, close-after). */
  onCut?: (key: FaultKey) => void;
}

/** What ends a session while the loop sleeps: echod closed it. */
class Stopped extends Error {
  constructor() {
    super("closed by echod");
    this.name = "Interrupted";
  }
}

/**
 * Echoes through `io` as `options.profile` says, until the peer closes (every
 * byte read echoed by then, but for a cut) or a cut ends the connection.
 * A black hole or a stall then waits for `options.stopped`. Rejects when
 * the connection fails or is closed under it. Does not close the
 * connection, but for a reset.
 */
export function faultPump(
  io: FaultIo,
  state: FaultTally,
  options: FaultPumpOptions,
): Promise<void> {
  return new FaultLoop(io, state, options).run();
}

class FaultLoop {
  #io: FaultIo;
  #state: FaultTally;
  #totals: Tally;
  #profile: FaultProfile;
  #options: FaultPumpOptions;
  #chunks: { data: Uint8Array; due: number }[] = [];
  #queued = 0;
  #lastDue = 0;
  #ended = false;
  // Set once a cut has acted: what is read after it is discarded.
  #cut = false;
  #stopped = false;
  #reset = false;
  #wakeReader?: () => void;
  #wakeWriter?: () => void;
  #nextAt = 0;

  constructor(io: FaultIo, state: FaultTally, options: FaultPumpOptions) {
    this.#io = io;
    this.#state = state;
    this.#totals = options.totals ?? { bytesIn: 0, bytesOut: 0 };
    this.#profile = options.profile;
    this.#options = options;
    options.stopped.then(() => {
      this.#stopped = true;
      this.#wakeReader?.();
      this.#wakeWriter?.();
    });
  }

  async run(): Promise<void> {
    const { early } = this.#options;
    if (early !== undefined && early.length > 0) this.#take(early.slice());
    const reading = this.#read();
    // Whichever fails first ends the session; the other is then left to settle quietly.
    reading.catch(() => {});
    const writing = this.#write();
    writing.catch(() => {});
    await Promise.race([reading.then(() => new Promise<void>(() => {})), writing]);
    if (this.#reset) return;
    // A stall or a black hole keeps the connection open, echoing nothing,
    // until echod closes it; so does a peer that half-closed one.
    if (!this.#ended || this.#profile.blackhole || this.#stalled()) {
      await Promise.race([this.#options.stopped, reading]);
    }
  }

  #stalled(): boolean {
    const { stallAfter } = this.#profile;
    return stallAfter !== undefined && this.#state.bytesIn >= stallAfter;
  }

  /** Counts and queues what was read. */
  #take(data: Uint8Array): void {
    const n = data.length;
    this.#state.bytesIn += n;
    this.#totals.bytesIn += n;
    if (this.#profile.blackhole || this.#cut) {
      this.#state.bytesDropped += n;
      return;
    }
    const { latency, jitter } = this.#profile;
    const due = Math.max(this.#lastDue, performance.now() + latency + Math.random() * jitter);
    this.#lastDue = due;
    this.#chunks.push({ data, due });
    this.#queued += n;
    this.#wakeWriter?.();
  }

  async #read(): Promise<void> {
    const { stallAfter } = this.#profile;
    const buf = new Uint8Array(READ_SIZE);
    for (;;) {
      if (stallAfter !== undefined && this.#state.bytesIn >= stallAfter && !this.#cut) {
        this.#options.onCut?.("stall-after");
        return;
      }
      while (this.#queued > MAX_QUEUED && !this.#stopped) {
        await new Promise<void>((resolve) => this.#wakeReader = resolve);
      }
      if (this.#stopped) throw new Stopped();
      const room = stallAfter === undefined || this.#cut
        ? READ_SIZE
        : Math.min(READ_SIZE, stallAfter - this.#state.bytesIn);
      const n = await this.#io.read(room === READ_SIZE ? buf : buf.subarray(0, room));
      if (n === null) {
        this.#ended = true;
        this.#wakeWriter?.();
        return;
      }
      this.#take(buf.slice(0, n));
    }
  }

  async #write(): Promise<void> {
    const limit = this.#profile.resetAfter ?? this.#profile.closeAfter;
    if (limit === 0) return await this.#cutNow();
    for (;;) {
      const chunk = this.#chunks[0];
      if (chunk === undefined) {
        if (this.#ended) return;
        await this.#until(() => this.#chunks.length > 0 || this.#ended);
        continue;
      }
      await this.#sleepUntil(chunk.due);
      let sent = 0;
      while (sent < chunk.data.length) {
        let piece = this.#piece(chunk.data.length - sent);
        if (limit !== undefined) piece = Math.min(piece, limit - this.#state.bytesOut);
        await this.#pace();
        await this.#writeAll(chunk.data.subarray(sent, sent + piece));
        sent += piece;
        // A slice written while the last one still waits in the kernel's queue
        // would join it (Linux autocorking): give it a turn of the event loop to leave.
        if (this.#profile.slice > 0 && sent < chunk.data.length) await this.#nextTurn();
        if (this.#profile.rate > 0) this.#nextAt += (piece * 1000) / this.#profile.rate;
        if (limit !== undefined && this.#state.bytesOut >= limit) {
          chunk.data = chunk.data.subarray(sent);
          return await this.#cutNow();
        }
      }
      this.#chunks.shift();
      this.#queued -= chunk.data.length;
      this.#wakeReader?.();
    }
  }

  /** Bytes the next write may hold: a slice, a rate step, or all. */
  #piece(left: number): number {
    const { slice, rate } = this.#profile;
    let piece = left;
    if (slice > 0) piece = Math.min(piece, slice);
    if (rate > 0) piece = Math.min(piece, Math.max(1, Math.floor((rate * RATE_STEP_MS) / 1000)));
    return piece;
  }

  /** Waits until the rate allows the next write. */
  async #pace(): Promise<void> {
    if (this.#profile.rate === 0) return;
    const now = performance.now();
    if (now - this.#nextAt > RATE_SLACK_MS) this.#nextAt = now;
    await this.#sleepUntil(this.#nextAt);
  }

  async #writeAll(data: Uint8Array): Promise<void> {
    for (let sent = 0; sent < data.length;) {
      const w = await this.#io.write(sent === 0 ? data : data.subarray(sent));
      sent += w;
      this.#state.bytesOut += w;
      this.#totals.bytesOut += w;
    }
  }

  /** The cut of reset-after or close-after: exactly at its byte. */
  async #cutNow(): Promise<void> {
    this.#cut = true;
    // What was read and will not be echoed now.
    for (const chunk of this.#chunks) this.#state.bytesDropped += chunk.data.length;
    this.#chunks = [];
    this.#queued = 0;
    this.#wakeReader?.();
    if (this.#profile.resetAfter !== undefined) {
      this.#options.onCut?.("reset-after");
      this.#reset = true;
      this.#options.reset();
      return;
    }
    this.#options.onCut?.("close-after");
    await this.#io.closeWrite();
    // The reader goes on discarding until the peer closes, so the close stays clean.
    await this.#until(() => this.#ended);
  }

  /** Waits until `ready()` holds; the reader and the stop wake the writer. */
  async #until(ready: () => boolean): Promise<void> {
    while (!ready()) {
      if (this.#stopped) throw new Stopped();
      await new Promise<void>((resolve) => this.#wakeWriter = resolve);
    }
  }

  /** One turn of the event loop (a timer of 0). */
  async #nextTurn(): Promise<void> {
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    if (this.#stopped) throw new Stopped();
  }

  /** Sleeps until `performance.now()` reaches `at`; throws when echod closes the connection. */
  async #sleepUntil(at: number): Promise<void> {
    // Never early: a chunk due in 0.3 ms waits for it too.
    for (let wait = at - performance.now(); wait > 0; wait = at - performance.now()) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        // The reader wakes the writer too: then it sleeps again for what is left.
        this.#wakeWriter = resolve;
        timer = setTimeout(resolve, wait);
      });
      clearTimeout(timer);
      if (this.#stopped) throw new Stopped();
    }
  }
}
