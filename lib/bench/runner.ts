/**
 * The load generator behind `echod bench`: drives any TCP echo server and
 * checks every byte that comes back.
 *
 * Each connection sends a stream cut from a shared pseudo-random pattern,
 * starting at an offset of its own, so a lost, reordered, corrupted or
 * crossed byte (another connection's data) fails the comparison. Latency
 * goes into an HDR histogram; in open-loop mode (`rate`) it is measured
 * from when each message was due, not when it could be sent, so a stalled
 * server cannot hide its stall (coordinated omission).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import * as hdr from "hdr-histogram-js";
import { RuntimeError } from "../errors.ts";

/** What is measured. */
export type BenchMode = "rr" | "stream" | "connect" | "hold";

/** Kinds of failure the bench counts. */
export type BenchErrorKind =
  | "mismatch"
  | "early-close"
  | "reset"
  | "refused"
  | "timeout"
  | "other";

/** How to load the target. */
export interface BenchOptions {
  /** Target host name or address. */
  host: string;
  /** Target port. */
  port: number;
  /**
   * `rr`: request/response; `stream`: bulk throughput; `connect`: open, echo 1 byte, close;
   * `hold`: open connections and keep them.
   * @default {"rr"}
   */
  mode?: BenchMode;
  /**
   * Concurrent connections.
   * @default {50}
   */
  connections?: number;
  /**
   * Bytes per message (rr) or per write (stream).
   * @default {512 for rr, 65536 for stream}
   */
  size?: number;
  /**
   * Stream mode: most bytes in flight per connection.
   * @default {262144}
   */
  window?: number;
  /**
   * Milliseconds of measurement, after the warm-up.
   * @default {10000}
   */
  duration?: number;
  /**
   * Stop after this many messages (rr) or connections (connect) instead of after `duration`.
   * @default {0}
   */
  count?: number;
  /**
   * Open loop: messages (rr) or connections (connect) per second, across all connections.
   * 0 runs closed loop, each connection as fast as the server answers.
   * @default {0}
   */
  rate?: number;
  /**
   * Milliseconds of load before measuring starts.
   * @default {1000}
   */
  warmup?: number;
  /**
   * Milliseconds to wait for a connection to open.
   * @default {5000}
   */
  connectTimeout?: number;
  /**
   * Hold mode: called once every connection is open and has echoed; the
   * connections stay open until it resolves (or `duration` passes if it is not given).
   */
  onHeld?: (open: number) => Promise<void>;
  /** Called when measuring starts (after the warm-up) and when it ends. */
  onPhase?: (phase: "measuring" | "done") => void;
  /** Called about once a second while measuring. */
  onProgress?: (progress: BenchProgress) => void;
}

/** A progress sample. */
export interface BenchProgress {
  /** Milliseconds measured so far. */
  elapsedMs: number;
  /** Messages (rr), connections (connect, hold) or bytes (stream) completed so far. */
  done: number;
  /** Errors so far. */
  errors: number;
}

/** Latency summary in microseconds. */
export interface LatencySummary {
  /** Samples. */
  count: number;
  /** Mean. */
  mean: number;
  /** Median. */
  p50: number;
  /** 90th percentile. */
  p90: number;
  /** 99th percentile. */
  p99: number;
  /** 99.9th percentile. */
  p999: number;
  /** Largest. */
  max: number;
}

/** What a run measured. */
export interface BenchReport {
  /** The mode. */
  mode: BenchMode;
  /** `host:port`. */
  target: string;
  /** Connections asked for. */
  connections: number;
  /** Message or write size in bytes. */
  size: number;
  /** Milliseconds measured (after warm-up). */
  elapsedMs: number;
  /** Messages echoed (rr), connections completed (connect), connections held (hold). */
  operations: number;
  /** Operations per second. */
  rate: number;
  /** Bytes echoed back and verified during measurement. */
  verifiedBytes: number;
  /** Verified bytes per second. */
  bytesPerSecond: number;
  /** Latency of each operation (rr, connect, hold: time to open and echo). */
  latency: LatencySummary;
  /** Errors by kind. */
  errors: Record<BenchErrorKind, number>;
  /** All errors. */
  errorCount: number;
  /** The latency histogram, HDR-encoded (base64), for merging and plotting. */
  histogram: string;
}

const PATTERN_PERIOD = 65_521; // prime, so offsets of different connections never line up

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

class Phase {
  measuring = false;
  stopped = false;
  startedAt = 0;
  operations = 0;
  verifiedBytes = 0;
  errors: Record<BenchErrorKind, number> = {
    mismatch: 0,
    "early-close": 0,
    reset: 0,
    refused: 0,
    timeout: 0,
    other: 0,
  };
  histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });

  record(startedAt: number, bytes: number): void {
    if (!this.measuring) return;
    this.operations++;
    this.verifiedBytes += bytes;
    this.histogram.recordValue(Math.max(1, Math.round((performance.now() - startedAt) * 1_000)));
  }

  /** Whether `count` operations (0: no count) are done; stops the run when they are. */
  reached(count: number): boolean {
    if (count > 0 && this.measuring && this.operations >= count) this.stopped = true;
    return this.stopped;
  }

  fail(kind: BenchErrorKind): void {
    this.errors[kind]++;
  }

  get errorCount(): number {
    return Object.values(this.errors).reduce((a, b) => a + b, 0);
  }
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

class BenchFailure extends Error {
  constructor(readonly kind: BenchErrorKind, message: string) {
    super(message);
  }
}

/**
 * Runs one benchmark in this thread and returns what it measured. Throws
 * only when the target cannot be reached at all.
 */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const mode = options.mode ?? "rr";
  const connections = options.connections ?? 50;
  const size = options.size ?? (mode === "stream" ? 65_536 : 512);
  const warmup = options.warmup ?? 1_000;
  const duration = options.duration ?? 10_000;
  const phase = new Phase();
  const target = formatTarget(options.host, options.port);

  // Fail fast with a clear reason when nothing answers.
  try {
    (await open(options)).close();
  } catch (error) {
    throw new RuntimeError(`cannot connect to ${target}: ${(error as Error).message}`);
  }

  const progress = options.onProgress
    ? setInterval(() => {
      if (!phase.measuring) return;
      options.onProgress!({
        elapsedMs: performance.now() - phase.startedAt,
        done: mode === "stream" ? phase.verifiedBytes : phase.operations,
        errors: phase.errorCount,
      });
    }, 1_000)
    : undefined;

  const workers: Promise<void>[] = [];
  const perConnRate = (options.rate ?? 0) / connections;
  const count = options.count ?? 0;
  const heldReady: Promise<void>[] = [];
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const gate = new Gate(256);
  for (let i = 0; i < connections; i++) {
    const offset = (i * 7_919) % PATTERN_PERIOD;
    switch (mode) {
      case "rr":
        workers.push(rrLoop(options, phase, { size, offset, perConnRate, count }));
        break;
      case "stream":
        workers.push(streamLoop(options, phase, { size, offset, window: options.window }));
        break;
      case "connect":
        workers.push(connectLoop(options, phase, { offset, perConnRate, count }));
        break;
      case "hold": {
        let ready: () => void = () => {};
        heldReady.push(new Promise<void>((resolve) => (ready = resolve)));
        workers.push(holdOne(options, phase, { offset, ready, released, gate }));
        break;
      }
    }
  }

  let elapsedMs: number;
  if (mode === "hold") {
    phase.measuring = true;
    phase.startedAt = performance.now();
    await Promise.all(heldReady);
    elapsedMs = performance.now() - phase.startedAt;
    if (options.onHeld) await options.onHeld(phase.operations);
    else await delay(duration);
    phase.stopped = true;
    release();
  } else {
    await delay(warmup);
    phase.measuring = true;
    phase.startedAt = performance.now();
    options.onPhase?.("measuring");
    if (count > 0) {
      await Promise.race([Promise.all(workers), delay(3_600_000)]);
    } else {
      await delay(duration);
    }
    elapsedMs = performance.now() - phase.startedAt;
    phase.measuring = false;
    phase.stopped = true;
    options.onPhase?.("done");
  }
  await Promise.all(workers);
  if (progress !== undefined) clearInterval(progress);

  const h = phase.histogram;
  const seconds = elapsedMs / 1_000;
  return {
    mode,
    target,
    connections,
    size: mode === "connect" || mode === "hold" ? 1 : size,
    elapsedMs: Math.round(elapsedMs),
    operations: phase.operations,
    rate: round(phase.operations / seconds),
    verifiedBytes: phase.verifiedBytes,
    bytesPerSecond: Math.round(phase.verifiedBytes / seconds),
    latency: summarize(h),
    errors: phase.errors,
    errorCount: phase.errorCount,
    histogram: hdr.encodeIntoCompressedBase64(h),
  };
}

/** Merges reports of the same run split across workers. */
export function mergeReports(reports: BenchReport[]): BenchReport {
  const merged = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const errors = { ...reports[0].errors };
  let operations = 0;
  let verifiedBytes = 0;
  let connections = 0;
  for (const r of reports) {
    merged.add(hdr.decodeFromCompressedBase64(r.histogram));
    operations += r.operations;
    verifiedBytes += r.verifiedBytes;
    connections += r.connections;
  }
  for (const r of reports.slice(1)) {
    for (const kind of Object.keys(errors) as BenchErrorKind[]) errors[kind] += r.errors[kind];
  }
  const elapsedMs = Math.max(...reports.map((r) => r.elapsedMs));
  const seconds = elapsedMs / 1_000;
  return {
    ...reports[0],
    connections,
    elapsedMs,
    operations,
    rate: round(operations / seconds),
    verifiedBytes,
    bytesPerSecond: Math.round(verifiedBytes / seconds),
    latency: summarize(merged),
    errors,
    errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
    histogram: hdr.encodeIntoCompressedBase64(merged),
  };
}

/** Percentile points (percentile, microseconds) of an encoded histogram, for a chart. */
export function percentileCurve(histogram: string): [number, number][] {
  const h = hdr.decodeFromCompressedBase64(histogram);
  const points: [number, number][] = [];
  for (const p of [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100]) {
    points.push([p, h.getValueAtPercentile(p)]);
  }
  return points;
}

async function rrLoop(
  options: BenchOptions,
  phase: Phase,
  cfg: { size: number; offset: number; perConnRate: number; count: number },
): Promise<void> {
  const pattern = sharedPattern(cfg.size);
  const received = new Uint8Array(cfg.size);
  let at = cfg.offset;
  while (!phase.stopped) {
    const conn = await reconnect(options, phase);
    if (conn === undefined) continue;
    const pace = new Pace(cfg.perConnRate);
    try {
      while (!phase.stopped && !phase.reached(cfg.count)) {
        const startedAt = await pace.next();
        const sent = pattern.subarray(at, at + cfg.size);
        await writeAll(conn, sent);
        await readExactly(conn, received);
        if (Buffer.compare(received, sent) !== 0) {
          throw new BenchFailure("mismatch", "echoed bytes differ from those sent");
        }
        at = (at + cfg.size) % PATTERN_PERIOD;
        phase.record(startedAt, cfg.size);
      }
    } catch (error) {
      if (!phase.stopped) phase.fail(kindOf(error));
      at = cfg.offset;
    } finally {
      closeQuietly(conn);
    }
  }
}

async function streamLoop(
  options: BenchOptions,
  phase: Phase,
  cfg: { size: number; offset: number; window?: number },
): Promise<void> {
  const window = Math.max(cfg.window ?? 262_144, cfg.size);
  const pattern = sharedPattern(Math.max(cfg.size, window));
  const buf = new Uint8Array(Math.max(cfg.size, 65_536));
  while (!phase.stopped) {
    const conn = await reconnect(options, phase);
    if (conn === undefined) continue;
    let failure: unknown;
    const flow = { sent: 0, got: 0, done: false, wake: undefined as (() => void) | undefined };
    // The writer keeps up to `window` bytes in flight, then half-closes
    // when the run stops: the echo must then deliver the rest and close.
    const writer = (async () => {
      let at = cfg.offset;
      while (!phase.stopped && !flow.done) {
        if (flow.sent - flow.got + cfg.size > window) {
          await new Promise<void>((resolve) => (flow.wake = resolve));
          continue;
        }
        await writeAll(conn, pattern.subarray(at, at + cfg.size));
        flow.sent += cfg.size;
        at = (at + cfg.size) % PATTERN_PERIOD;
      }
      if (!flow.done) await conn.closeWrite();
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
          if (flow.got < flow.sent) {
            throw new BenchFailure("early-close", "server closed before echoing all");
          }
          break;
        }
        if (Buffer.compare(buf.subarray(0, n), pattern.subarray(expectAt, expectAt + n)) !== 0) {
          throw new BenchFailure("mismatch", "echoed bytes differ from those sent");
        }
        expectAt = (expectAt + n) % PATTERN_PERIOD;
        flow.got += n;
        if (phase.measuring) phase.verifiedBytes += n;
        const wake = flow.wake;
        flow.wake = undefined;
        wake?.();
      }
    } catch (error) {
      failure = error;
    }
    flow.done = true;
    closeQuietly(conn);
    flow.wake?.();
    await writer;
    if (failure !== undefined) phase.fail(kindOf(failure));
  }
}

async function connectLoop(
  options: BenchOptions,
  phase: Phase,
  cfg: { offset: number; perConnRate: number; count: number },
): Promise<void> {
  const pattern = sharedPattern(1);
  const one = new Uint8Array(1);
  const pace = new Pace(cfg.perConnRate);
  let at = cfg.offset;
  while (!phase.stopped && !phase.reached(cfg.count)) {
    const startedAt = await pace.next();
    let conn: Deno.Conn | undefined;
    try {
      conn = await open(options);
      const sent = pattern.subarray(at, at + 1);
      await writeAll(conn, sent);
      await readExactly(conn, one);
      if (one[0] !== sent[0]) throw new BenchFailure("mismatch", "echoed byte differs");
      at = (at + 1) % PATTERN_PERIOD;
      phase.record(startedAt, 1);
    } catch (error) {
      if (!phase.stopped) phase.fail(kindOf(error));
    } finally {
      if (conn) closeQuietly(conn);
    }
  }
}

async function holdOne(
  options: BenchOptions,
  phase: Phase,
  cfg: { offset: number; ready: () => void; released: Promise<void>; gate: Gate },
): Promise<void> {
  const pattern = sharedPattern(1);
  const one = new Uint8Array(1);
  const startedAt = performance.now();
  let conn: Deno.Conn | undefined;
  try {
    await cfg.gate.enter();
    try {
      conn = await openWithRetry(options, phase);
    } finally {
      cfg.gate.leave();
    }
    const sent = pattern.subarray(cfg.offset, cfg.offset + 1);
    await writeAll(conn, sent);
    await readExactly(conn, one);
    if (one[0] !== sent[0]) throw new BenchFailure("mismatch", "echoed byte differs");
    phase.record(startedAt, 1);
  } catch (error) {
    phase.fail(kindOf(error));
    if (conn) closeQuietly(conn);
    conn = undefined;
  }
  cfg.ready();
  await cfg.released;
  if (conn) closeQuietly(conn);
}

/** Lets at most `limit` callers through at once, so thousands of opens do not flood the backlog. */
class Gate {
  #free: number;
  #queue: (() => void)[] = [];

  constructor(limit: number) {
    this.#free = limit;
  }

  async enter(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#queue.push(resolve));
  }

  leave(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#free++;
  }
}

// Opening thousands of connections at once overflows the listen backlog;
// a few tries with a short pause ride that out.
async function openWithRetry(options: BenchOptions, phase: Phase): Promise<Deno.Conn> {
  for (let attempt = 0;; attempt++) {
    try {
      return await open(options);
    } catch (error) {
      if (attempt >= 5 || phase.stopped) throw error;
      await delay(50 * (attempt + 1));
    }
  }
}

/** Opens a connection for a loop that keeps going, or counts why not and pauses briefly. */
async function reconnect(options: BenchOptions, phase: Phase): Promise<Deno.Conn | undefined> {
  try {
    return await open(options);
  } catch (error) {
    phase.fail(kindOf(error));
    await delay(100);
    return undefined;
  }
}

/** Opens a connection or throws a {@linkcode BenchFailure} that says why not. */
async function open(options: BenchOptions): Promise<Deno.TcpConn> {
  const timeout = options.connectTimeout ?? 5_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connecting = Deno.connect({ hostname: options.host, port: options.port });
  try {
    const conn = await Promise.race([
      connecting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new BenchFailure("timeout", `no answer within ${timeout} ms`)),
          timeout,
        );
      }),
    ]);
    conn.setNoDelay(true);
    return conn;
  } catch (error) {
    connecting.then((c) => c.close(), () => {});
    if (error instanceof BenchFailure) throw error;
    if (error instanceof Deno.errors.ConnectionRefused) {
      throw new BenchFailure(
        "refused",
        "connection refused",
      );
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let sent = 0; sent < data.length;) {
    sent += await conn.write(sent === 0 ? data : data.subarray(sent));
  }
}

async function readExactly(conn: Deno.Conn, into: Uint8Array): Promise<void> {
  for (let got = 0; got < into.length;) {
    const n = await conn.read(got === 0 ? into : into.subarray(got));
    if (n === null) throw new BenchFailure("early-close", "server closed before echoing all");
    got += n;
  }
}

function kindOf(error: unknown): BenchErrorKind {
  if (error instanceof BenchFailure) return error.kind;
  if (
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionAborted
  ) return "reset";
  if (error instanceof Deno.errors.ConnectionRefused) return "refused";
  if (error instanceof Deno.errors.TimedOut) return "timeout";
  return "other";
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

function summarize(h: hdr.Histogram): LatencySummary {
  return {
    count: h.totalCount,
    mean: round(h.mean),
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
  };
}

/** `host:port`, with IPv6 addresses in brackets. */
export function formatTarget(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
