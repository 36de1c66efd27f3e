/**
 * Reading echod's /metrics in tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Echod, GRACEFUL_STOP } from "./_echod.ts";
import { sampleOf } from "../lib/serve/metrics.ts";
import type { Counter } from "../lib/serve/stats.ts";

/** GETs `path` from the metrics address echod announced. */
export async function scrape(
  echod: Echod,
  path = "/metrics",
): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://${echod.ready!.metricsAddress}${path}`, {
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, text: await response.text() };
}

/** The value of one sample (`name` with its labels) in an exposition. */
export function metric(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  assert.ok(line, `no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

/**
 * Scrapes until `sample` reaches `atLeast` (echod counts what it has
 * accepted, which can lag the client's connects) or `timeout` ms pass;
 * returns the last value.
 */
export async function metricReaching(
  echod: Echod,
  sample: string,
  options: { atLeast: number; timeout?: number },
): Promise<number> {
  const deadline = performance.now() + (options.timeout ?? 10_000);
  for (;;) {
    const value = metric((await scrape(echod)).text, sample);
    if (value >= options.atLeast || performance.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Flags a test adds so that {@linkcode finalCounters} can read echod's
 * counters: on Windows, the metrics endpoint.
 */
export const COUNTER_FLAGS: string[] = GRACEFUL_STOP ? [] : ["--metrics", "127.0.0.1:0"];

/**
 * The values `counters` end with in echod: from its "stopped" record after
 * a graceful stop (exit 0 asserted), or on Windows, where a parent cannot
 * stop a child gracefully, from a scrape of /metrics just before it is
 * killed (start echod with {@linkcode COUNTER_FLAGS}).
 */
export async function finalCounters(
  echod: Echod,
  counters: Counter[],
): Promise<Record<Counter, number>> {
  const values = {} as Record<Counter, number>;
  if (GRACEFUL_STOP) {
    assert.equal((await echod.stop()).code, 0);
    const stopped = await echod.waitForMessage("stopped");
    for (const counter of counters) values[counter] = Number(stopped[counter]);
    return values;
  }
  const { text } = await scrape(echod);
  await echod.stop("SIGKILL");
  for (const counter of counters) values[counter] = metric(text, sampleOf(counter));
  return values;
}
