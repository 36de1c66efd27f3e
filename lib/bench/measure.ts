/**
 * Measuring a bench run: the {@linkcode Measurement} every connection
 * records into, the report it becomes, and the merge of reports from
 * several workers.
 *
 * @module
 */

import * as hdr from "hdr-histogram-js";
import type { Expectation } from "./expect.ts";

/** What is measured. */
export type BenchMode = "rr" | "stream" | "connect" | "hold";

/** Kinds of failure the bench counts. */
export type BenchErrorKind =
  | "mismatch"
  | "early-close"
  | "reset"
  | "refused"
  | "timeout"
  | "wrong-cut"
  | "stall"
  | "other";

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

/** The same latency summary in milliseconds (three decimals), as the text report shows it. */
export type LatencyMs = Omit<LatencySummary, "count">;

/** Connections the server cut short (closed, reset or stalled) and how they compare with the expectation. */
export interface CutSummary {
  /** Cut of the expected kind at the expected byte: passes. */
  asExpected: number;
  /** Cut of the expected kind at another byte, or no cut at the expected byte (also errors, `wrong-cut`). */
  wrongByte: number;
  /** Ended by the bench after no echo for the stall timeout (expected or not). */
  stalled: number;
  /** Of those, how many had a write blocked: the server had stopped reading. */
  stalledWhileWriting: number;
  /** Echoed bytes on each connection cut as expected or at the wrong byte. */
  bytesPerConnection: { count: number; min: number; mean: number; max: number };
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
  /** Verified bytes per second per connection (stream: the echo rate each connection saw). */
  bytesPerSecondPerConnection: number;
  /** Latency of each operation in microseconds (rr: one round trip; connect, hold: open and echo). */
  latency: LatencySummary;
  /** The same latency in milliseconds. */
  latencyMs: LatencyMs;
  /** The cut expected (`--expect-close`, `--expect-reset`, `--expect-stall`), or null. */
  expect: { cut: Expectation["cut"]; bytes: number | null } | null;
  /** Milliseconds without an echo after which a waiting connection counts as stalled. */
  stallTimeoutMs: number;
  /** Connections cut short by the server. */
  cuts: CutSummary;
  /** Errors by kind. */
  errors: Record<BenchErrorKind, number>;
  /** All errors. */
  errorCount: number;
  /** The latency histogram, HDR-encoded (base64), for merging and plotting. */
  histogram: string;
}

/**
 * One run's measurement: whether it is measuring yet, operations and
 * verified bytes, errors by kind, and the latency histogram.
 */
export class Measurement {
  /** Set after the warm-up. */
  measuring = false;
  /** Set when the run is over. */
  stopped = false;
  /** When measuring began. */
  startedAt = 0;
  /** Operations completed while measuring. */
  operations = 0;
  /** Bytes echoed and verified while measuring. */
  verifiedBytes = 0;
  /** Failures by kind. */
  errors: Record<BenchErrorKind, number> = {
    mismatch: 0,
    "early-close": 0,
    reset: 0,
    refused: 0,
    timeout: 0,
    "wrong-cut": 0,
    stall: 0,
    other: 0,
  };
  /** Connections cut short. */
  cuts: CutSummary = {
    asExpected: 0,
    wrongByte: 0,
    stalled: 0,
    stalledWhileWriting: 0,
    bytesPerConnection: { count: 0, min: 0, mean: 0, max: 0 },
  };
  /** Latency in microseconds. */
  histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });

  /** Counts one operation that began at `startedAt` and moved `bytes`, once measuring. */
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

  /** Counts one failure. */
  fail(kind: BenchErrorKind): void {
    this.errors[kind]++;
  }

  /** Counts a connection cut after `bytes` echoed bytes, at the expected byte or not. */
  cut(bytes: number, asExpected: boolean): void {
    if (asExpected) this.cuts.asExpected++;
    else this.cuts.wrongByte++;
    const b = this.cuts.bytesPerConnection;
    b.min = b.count === 0 ? bytes : Math.min(b.min, bytes);
    b.max = Math.max(b.max, bytes);
    b.mean += (bytes - b.mean) / ++b.count;
  }

  /** Counts a stalled connection. */
  stalled(writing: boolean): void {
    this.cuts.stalled++;
    if (writing) this.cuts.stalledWhileWriting++;
  }

  /** All failures. */
  get errorCount(): number {
    return Object.values(this.errors).reduce((a, b) => a + b, 0);
  }
}

/** A failure the bench counts by its kind. */
export class BenchFailure extends Error {
  /** Creates a failure of `kind`. */
  constructor(readonly kind: BenchErrorKind, message: string) {
    super(message);
  }
}

/** The kind of a failure, for counting. */
export function kindOf(error: unknown): BenchErrorKind {
  if (error instanceof BenchFailure) return error.kind;
  // NotConnected: reset so soon after the handshake that connect's own
  // address lookup failed (a server resetting every connection at once).
  if (
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.NotConnected
  ) return "reset";
  if (error instanceof Deno.errors.ConnectionRefused) return "refused";
  if (error instanceof Deno.errors.TimedOut) return "timeout";
  return "other";
}

/** The latency summary of a histogram, in microseconds. */
export function summarize(h: hdr.Histogram): LatencySummary {
  // A percentile is its bucket's upper end, which can pass the exact max.
  const at = (p: number) => Math.min(h.getValueAtPercentile(p), h.maxValue);
  return {
    count: h.totalCount,
    mean: round(h.mean),
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    max: h.maxValue,
  };
}

/** A latency summary in milliseconds. */
export function inMs(latency: LatencySummary): LatencyMs {
  const ms = (us: number) => Math.round(us) / 1_000;
  return {
    mean: ms(latency.mean),
    p50: ms(latency.p50),
    p90: ms(latency.p90),
    p99: ms(latency.p99),
    p999: ms(latency.p999),
    max: ms(latency.max),
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
  const cuts = mergeCuts(reports.map((r) => r.cuts));
  const elapsedMs = Math.max(...reports.map((r) => r.elapsedMs));
  const seconds = elapsedMs / 1_000;
  const latency = summarize(merged);
  return {
    ...reports[0],
    connections,
    elapsedMs,
    operations,
    rate: round(operations / seconds),
    verifiedBytes,
    bytesPerSecond: Math.round(verifiedBytes / seconds),
    bytesPerSecondPerConnection: Math.round(verifiedBytes / seconds / connections),
    latency,
    latencyMs: inMs(latency),
    cuts,
    errors,
    errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
    histogram: hdr.encodeIntoCompressedBase64(merged),
  };
}

function mergeCuts(all: CutSummary[]): CutSummary {
  const out: CutSummary = {
    asExpected: 0,
    wrongByte: 0,
    stalled: 0,
    stalledWhileWriting: 0,
    bytesPerConnection: { count: 0, min: 0, mean: 0, max: 0 },
  };
  let sum = 0;
  for (const c of all) {
    out.asExpected += c.asExpected;
    out.wrongByte += c.wrongByte;
    out.stalled += c.stalled;
    out.stalledWhileWriting += c.stalledWhileWriting;
    const b = c.bytesPerConnection;
    if (b.count === 0) continue;
    const o = out.bytesPerConnection;
    o.min = o.count === 0 ? b.min : Math.min(o.min, b.min);
    o.max = Math.max(o.max, b.max);
    o.count += b.count;
    sum += b.mean * b.count;
  }
  if (out.bytesPerConnection.count > 0) {
    out.bytesPerConnection.mean = round(sum / out.bytesPerConnection.count);
  }
  return out;
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

/** Rounds to one decimal. */
export function round(x: number): number {
  return Math.round(x * 10) / 10;
}
