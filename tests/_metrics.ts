/**
 * Reading echod's /metrics in tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import { exchange } from "./_client.ts";
import type { Echod } from "./_echod.ts";
import type { ExportedCounter } from "../lib/serve/metrics.ts";
import { poll } from "./_poll.ts";

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

/** The port of the metrics endpoint echod announced. */
export function metricsPort(echod: Echod): number {
  return Number(String(echod.ready!.metricsAddress).split(":").at(-1));
}

/**
 * Sends `request` as raw bytes to the metrics endpoint and reads until
 * echod closes; returns the answer (empty if it closed without one, or
 * reset) and the milliseconds it took.
 */
export async function rawRequest(
  echod: Echod,
  request: string,
): Promise<{ answer: string; ms: number }> {
  const start = performance.now();
  const answer = await exchange("127.0.0.1", metricsPort(echod), request);
  return { answer, ms: performance.now() - start };
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
  let value = NaN;
  await poll(async () => {
    value = metric((await scrape(echod)).text, sample);
    return value >= options.atLeast ? value : undefined;
  }, { what: `${sample} to reach ${options.atLeast}`, timeoutMs: options.timeout ?? 10_000 })
    .catch(() => {}); // the caller asserts on the value
  return value;
}

/**
 * The values `counters` end with in echod, from its "stopped" record after
 * a graceful stop (exit 0 asserted).
 */
export async function finalCounters(
  echod: Echod,
  counters: ExportedCounter[],
): Promise<Record<ExportedCounter, number>> {
  assert.equal((await echod.stop()).code, 0);
  const stopped = await echod.waitForMessage("stopped");
  const values = {} as Record<ExportedCounter, number>;
  for (const counter of counters) values[counter] = Number(stopped[counter]);
  return values;
}
