/**
 * The stats line: the counters logged every `--stats-interval`, with the
 * byte and accept rates over the last interval.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { type Counter, refusedTotal, type StatsSource } from "./stats.ts";

/** A running stats reporter. */
export interface StatsReporter {
  /** Stops reporting. */
  stop(): void;
}

/**
 * Logs `stats` at info level every `intervalMs`, with byte and accept rates
 * over the last interval. Returns `undefined` when `intervalMs` is 0.
 */
export function startStatsReporter(
  stats: StatsSource,
  intervalMs: number,
  log: Logger,
): StatsReporter | undefined {
  if (intervalMs <= 0) return undefined;
  let lastAt = performance.now();
  let last = stats.snapshot();
  const id = setInterval(function report() {
    const nowAt = performance.now();
    const now = stats.snapshot();
    const seconds = (nowAt - lastAt) / 1_000;
    const rate = (counter: Counter) =>
      round(((now[counter] ?? 0) - (last[counter] ?? 0)) / seconds);
    log.info(
      "stats: {active} active, {accepted} accepted, {refused} refused, " +
        "{bytesIn} bytes in, {bytesOut} bytes out, " +
        "{acceptRate} conn/s, {inRate} B/s in, {outRate} B/s out",
      {
        ...now,
        refused: refusedTotal(now),
        acceptRate: rate("accepted"),
        inRate: rate("bytesIn"),
        outRate: rate("bytesOut"),
      },
    );
    last = now;
    lastAt = nowAt;
  }, intervalMs);
  return {
    stop() {
      clearInterval(id);
    },
  };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
