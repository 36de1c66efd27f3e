/**
 * Measuring a bench run: the {@linkcode Measurement} every connection
 * records into, the report it becomes, and the merge of reports from
 * several workers.
 *
 * @module
 */

import * as hdr from "hdr-histogram-js";

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
    other: 0,
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
  if (
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionAborted
  ) return "reset";
  if (error instanceof Deno.errors.ConnectionRefused) return "refused";
  if (error instanceof Deno.errors.TimedOut) return "timeout";
  return "other";
}

/** The latency summary of a histogram, in microseconds. */
export function summarize(h: hdr.Histogram): LatencySummary {
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

/** Rounds to one decimal. */
export function round(x: number): number {
  return Math.round(x * 10) / 10;
}
