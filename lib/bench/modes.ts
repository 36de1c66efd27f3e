/**
 * The load of each bench mode, one connection's loop each: `rr`
 * (request/response), `stream` (bulk, a window in flight), `connect`
 * (open, echo one byte, close) and `hold` (open and keep). Every byte sent
 * is cut from a shared pseudo-random pattern at the connection's own offset
 * and compared when it comes back.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { closeQuietly, writeAll } from "../net.ts";
import { open, type OpenLimit, openWithRetry, reconnect } from "./connect.ts";
import { BenchFailure, kindOf, type Measurement } from "./measure.ts";
import {
  awaitCut,
  type Expectation,
  judgeEnd,
  type Link,
  resetBehindClose,
  sendLimit,
  type Watchdog,
} from "./expect.ts";
import { BENCH_DEFAULTS, type BenchOptions } from "./options.ts";

/** The pattern's period. */
export const PATTERN_PERIOD = 65_521; // prime, so offsets of different connections never line up

// One pattern for every connection; each starts at its own offset.
let patternCache: Uint8Array | undefined;

function sharedPattern(maxChunk: number): Uint8Array {
  if (patternCache === undefined || patternCache.length < PATTERN_PERIOD + maxChunk) {
    const length = PATTERN_PERIOD + Math.max(maxChunk, 1 << 20);
    const out = new Uint8Array(length);
    let x = 0x9e3779b9;
    for (let i = 0; i < PATTERN_PERIOD; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
    // Repeat, so any window of up to `length - PERIOD` bytes is contiguous.
    for (let i = PATTERN_PERIOD; i < length; i++) out[i] = out[i - PATTERN_PERIOD];
    patternCache = out;
  }
  return patternCache;
}

/**
 * When each operation is due: at once in closed loop (rate 0), else every
 * 1/rate seconds from the start, whether or not the previous one is done;
 * latency is then counted from the due time (no coordinated omission).
 */
class Pace {
  #interval: number;
  #began = performance.now();
  #sent = 0;

  constructor(perSecond: number) {
    this.#interval = perSecond > 0 ? 1_000 / perSecond : 0;
  }

  /** Waits until the next operation is due; returns the time it was due. */
  async next(): Promise<number> {
    const now = performance.now();
    if (this.#interval === 0) return now;
    const due = this.#began + this.#sent++ * this.#interval;
    if (due > now) await delay(due - now);
    return due;
  }
}

/** What every loop but `hold` is given: the watchdog, and the cut expected if any. */
export interface LoopContext {
  /** Ends connections that stall. */
  watchdog: Watchdog;
  /** The cut the server is expected to make. */
  expect?: Expectation;
}

/** `rr`: send a message, wait for its echo, compare, repeat (reconnecting after a failure). */
export async function rrLoop(
  options: BenchOptions,
  m: Measurement,
  cfg: LoopContext & { size: number; offset: number; perConnRate: number; count: number },
): Promise<void> {
  const pattern = sharedPattern(cfg.size);
  const received = new Uint8Array(cfg.size);
  const limit = sendLimit(cfg.expect);
  let at = cfg.offset;
  while (!m.stopped) {
    const conn = await reconnect(options, m);
    if (conn === undefined) continue;
    const link = cfg.watchdog.watch(conn);
    const pace = new Pace(cfg.perConnRate);
    // The message in flight and how much of it came back, for a cut in its middle.
    let sent: Uint8Array | undefined;
    let got = 0;
    try {
      while (!m.stopped && !m.reached(cfg.count)) {
        const left = limit - link.sent;
        if (left === 0) await awaitCut(link, received);
        const length = left < cfg.size ? left : cfg.size;
        const into = length === cfg.size ? received : received.subarray(0, length);
        const startedAt = await pace.next();
        sent = pattern.subarray(at, at + length);
        got = 0;
        link.sent += length;
        link.writing = true;
        await writeAll(conn, sent);
        link.writing = false;
        while (got < length) {
          const n = await conn.read(got === 0 ? into : into.subarray(got));
          if (n === null) throw new BenchFailure("early-close", "server closed before echoing all");
          got += n;
          link.got += n;
        }
        if (Buffer.compare(into, sent) !== 0) {
          throw new BenchFailure("mismatch", "echoed bytes differ from those sent");
        }
        sent = undefined;
        at = (at + length) % PATTERN_PERIOD;
        m.record(startedAt, length);
      }
    } catch (error) {
      // The part of a message echoed before a cut must be exact too.
      const exact = sent === undefined || got === 0 ||
        Buffer.compare(received.subarray(0, got), sent.subarray(0, got)) === 0;
      if (!exact) m.fail("mismatch");
      else {judgeEnd(m, await resetBehindClose(error, conn, cfg.expect), {
          link,
          expect: cfg.expect,
        });}
      at = cfg.offset;
    } finally {
      cfg.watchdog.unwatch(link);
      closeQuietly(conn);
    }
  }
}

/** `stream`: keep `window` bytes in flight, compare all that comes back. */
export async function streamLoop(
  options: BenchOptions,
  m: Measurement,
  cfg: LoopContext & { size: number; offset: number; window?: number },
): Promise<void> {
  const window = Math.max(cfg.window ?? BENCH_DEFAULTS.window, cfg.size);
  const pattern = sharedPattern(Math.max(cfg.size, window));
  const buf = new Uint8Array(Math.max(cfg.size, 65_536));
  const limit = sendLimit(cfg.expect);
  while (!m.stopped) {
    const conn = await reconnect(options, m);
    if (conn === undefined) continue;
    const link = cfg.watchdog.watch(conn);
    link.awaitingCut = limit === 0; // a cut expected before any byte
    let failure: unknown;
    const flow = {
      done: false,
      halfClosed: false,
      wake: undefined as (() => void) | undefined,
    };
    // The writer keeps up to `window` bytes in flight, then half-closes
    // when the run stops: the echo must then deliver the rest and close.
    // With a cut expected after so many bytes it sends exactly those and
    // waits for the cut (a half-close would make any server close).
    const writer = (async () => {
      let at = cfg.offset;
      while (!m.stopped && !flow.done) {
        const left = limit - link.sent;
        if (link.sent - link.got + cfg.size > window || left === 0) {
          await new Promise<void>((resolve) => (flow.wake = resolve));
          continue;
        }
        const length = left < cfg.size ? left : cfg.size;
        link.sent += length;
        link.writing = true;
        await writeAll(conn, pattern.subarray(at, at + length));
        link.writing = false;
        at = (at + length) % PATTERN_PERIOD;
      }
      if (!flow.done && link.sent < limit) {
        flow.halfClosed = true;
        await conn.closeWrite();
      }
    })().catch((error) => {
      // The reader sees the same failure or is told by `done`; keep the first cause.
      failure ??= error;
      flow.done = true;
    });
    try {
      let expectAt = cfg.offset;
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) {
          if (flow.halfClosed && link.got === link.sent) break;
          throw new BenchFailure("early-close", "server closed before echoing all");
        }
        if (Buffer.compare(buf.subarray(0, n), pattern.subarray(expectAt, expectAt + n)) !== 0) {
          throw new BenchFailure("mismatch", "echoed bytes differ from those sent");
        }
        if (link.got + n > link.sent) {
          throw new BenchFailure("mismatch", "server sent bytes that were never sent to it");
        }
        expectAt = (expectAt + n) % PATTERN_PERIOD;
        link.got += n;
        if (link.got === limit) link.awaitingCut = true;
        if (m.measuring) m.verifiedBytes += n;
        const wake = flow.wake;
        flow.wake = undefined;
        wake?.();
      }
    } catch (error) {
      failure = await resetBehindClose(error, conn, cfg.expect);
    }
    flow.done = true;
    cfg.watchdog.unwatch(link);
    closeQuietly(conn);
    flow.wake?.();
    await writer;
    if (failure !== undefined) judgeEnd(m, failure, { link, expect: cfg.expect });
  }
}

/** `connect`: open, echo one byte, close, repeat. */
export async function connectLoop(
  options: BenchOptions,
  m: Measurement,
  cfg: LoopContext & { offset: number; perConnRate: number; count: number },
): Promise<void> {
  const pattern = sharedPattern(1);
  const one = new Uint8Array(1);
  const pace = new Pace(cfg.perConnRate);
  const limit = sendLimit(cfg.expect);
  let at = cfg.offset;
  while (!m.stopped && !m.reached(cfg.count)) {
    const startedAt = await pace.next();
    let conn: Deno.Conn | undefined;
    let link: Link | undefined;
    try {
      conn = await open(options);
      link = cfg.watchdog.watch(conn);
      if (limit === 0) await awaitCut(link, one);
      const sent = pattern.subarray(at, at + 1);
      link.sent = 1;
      await writeAll(conn, sent);
      await readExactly(conn, one);
      link.got = 1;
      if (one[0] !== sent[0]) throw new BenchFailure("mismatch", "echoed byte differs");
      at = (at + 1) % PATTERN_PERIOD;
      m.record(startedAt, 1);
    } catch (error) {
      judgeEnd(m, await resetBehindClose(error, conn, cfg.expect), { link, expect: cfg.expect });
    } finally {
      if (link) cfg.watchdog.unwatch(link);
      if (conn) closeQuietly(conn);
    }
  }
}

/** `hold`: open one connection, echo one byte, keep it until released. */
export async function holdOne(
  options: BenchOptions,
  m: Measurement,
  cfg: { offset: number; ready: () => void; released: Promise<void>; gate: OpenLimit },
): Promise<void> {
  const pattern = sharedPattern(1);
  const one = new Uint8Array(1);
  const startedAt = performance.now();
  let conn: Deno.Conn | undefined;
  try {
    await cfg.gate.enter();
    try {
      conn = await openWithRetry(options, m);
    } finally {
      cfg.gate.leave();
    }
    const sent = pattern.subarray(cfg.offset, cfg.offset + 1);
    await writeAll(conn, sent);
    await readExactly(conn, one);
    if (one[0] !== sent[0]) throw new BenchFailure("mismatch", "echoed byte differs");
    m.record(startedAt, 1);
  } catch (error) {
    m.fail(kindOf(error));
    if (conn) closeQuietly(conn);
    conn = undefined;
  }
  cfg.ready();
  await cfg.released;
  if (conn) closeQuietly(conn);
}

async function readExactly(conn: Deno.Conn, into: Uint8Array): Promise<void> {
  for (let got = 0; got < into.length;) {
    const n = await conn.read(got === 0 ? into : into.subarray(got));
    if (n === null) throw new BenchFailure("early-close", "server closed before echoing all");
    got += n;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
