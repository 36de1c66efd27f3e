/**
 * Reading echod's /metrics in tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Echod } from "./_echod.ts";

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
