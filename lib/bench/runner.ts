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

import * as hdr from "hdr-histogram-js";
import { RuntimeError } from "../errors.ts";
import { hostPort } from "../net.ts";
import { type BenchReport, inMs, Measurement, round, summarize } from "./measure.ts";
import { isCut, Watchdog } from "./expect.ts";
import { BENCH_DEFAULTS, type BenchOptions } from "./options.ts";
import { open, OpenLimit } from "./connect.ts";
import { connectLoop, holdOne, PATTERN_PERIOD, rrLoop, streamLoop } from "./modes.ts";

export type { BenchErrorKind, BenchMode, BenchReport, LatencySummary } from "./measure.ts";
export type { BenchOptions, BenchProgress } from "./options.ts";
export { mergeReports, percentileCurve } from "./measure.ts";

/**
 * Runs one benchmark in this thread and returns what it measured. Throws
 * only when the target cannot be reached at all.
 */
export async function benchmark(options: BenchOptions): Promise<BenchReport> {
  const mode = options.mode ?? "rr";
  const connections = options.connections ?? BENCH_DEFAULTS.connections;
  const size = options.size ??
    (mode === "stream" ? BENCH_DEFAULTS.streamSize : BENCH_DEFAULTS.size);
  const warmup = options.warmup ?? BENCH_DEFAULTS.warmup;
  const duration = options.duration ?? BENCH_DEFAULTS.duration;
  const m = new Measurement();
  const target = hostPort(options.host, options.port);

  // Fail fast with a clear reason when nothing answers.
  try {
    (await open(options)).close();
  } catch (error) {
    // A server cutting it in the greeting, as expected, did answer.
    if (options.expect === undefined || !isCut(error)) {
      throw new RuntimeError(`cannot connect to ${target}: ${(error as Error).message}`);
    }
  }

  const progress = options.onProgress
    ? setInterval(() => {
      if (!m.measuring) return;
      options.onProgress!({
        elapsedMs: performance.now() - m.startedAt,
        done: mode === "stream" ? m.verifiedBytes : m.operations,
        errors: m.errorCount,
      });
    }, 1_000)
    : undefined;

  const workers: Promise<void>[] = [];
  const perConnRate = (options.rate ?? 0) / connections;
  const count = options.count ?? 0;
  const heldReady: Promise<void>[] = [];
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const gate = new OpenLimit(256);
  const stallTimeout = options.stallTimeout ?? BENCH_DEFAULTS.stallTimeout;
  const loop = { watchdog: new Watchdog(stallTimeout), expect: options.expect };
  for (let i = 0; i < connections; i++) {
    const offset = (i * 7_919) % PATTERN_PERIOD;
    switch (mode) {
      case "rr":
        workers.push(rrLoop(options, m, { ...loop, size, offset, perConnRate, count }));
        break;
      case "stream":
        workers.push(streamLoop(options, m, { ...loop, size, offset, window: options.window }));
        break;
      case "connect":
        workers.push(connectLoop(options, m, { ...loop, offset, perConnRate, count }));
        break;
      case "hold": {
        let ready: () => void = () => {};
        heldReady.push(new Promise<void>((resolve) => (ready = resolve)));
        workers.push(holdOne(options, m, { offset, ready, released, gate }));
        break;
      }
    }
  }

  let elapsedMs: number;
  if (mode === "hold") {
    m.measuring = true;
    m.startedAt = performance.now();
    await Promise.all(heldReady);
    elapsedMs = performance.now() - m.startedAt;
    if (options.onHeld) await options.onHeld(m.operations);
    else await delay(duration);
    m.stopped = true;
    release();
  } else {
    await delay(warmup);
    m.measuring = true;
    m.startedAt = performance.now();
    options.onPhase?.("measuring");
    if (count > 0) {
      await Promise.race([Promise.all(workers), delay(3_600_000)]);
    } else {
      await delay(duration);
    }
    elapsedMs = performance.now() - m.startedAt;
    m.measuring = false;
    m.stopped = true;
    options.onPhase?.("done");
  }
  await Promise.all(workers);
  if (progress !== undefined) clearInterval(progress);

  const h = m.histogram;
  const seconds = elapsedMs / 1_000;
  const latency = summarize(h);
  const perConnection = m.cuts.bytesPerConnection;
  perConnection.mean = round(perConnection.mean);
  return {
    mode,
    target,
    connections,
    size: mode === "connect" || mode === "hold" ? 1 : size,
    elapsedMs: Math.round(elapsedMs),
    operations: m.operations,
    rate: round(m.operations / seconds),
    verifiedBytes: m.verifiedBytes,
    bytesPerSecond: Math.round(m.verifiedBytes / seconds),
    bytesPerSecondPerConnection: Math.round(m.verifiedBytes / seconds / connections),
    latency,
    latencyMs: inMs(latency),
    expect: options.expect
      ? { cut: options.expect.cut, bytes: options.expect.bytes ?? null }
      : null,
    stallTimeoutMs: stallTimeout,
    cuts: m.cuts,
    errors: m.errors,
    errorCount: m.errorCount,
    histogram: hdr.encodeIntoCompressedBase64(h),
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
