/**
 * A Web Worker that runs its share of an `echod bench` run and posts the
 * report back, so a run can drive more than one core.
 *
 * @module
 */

import { benchmark, type BenchOptions } from "./runner.ts";

/** The message the worker receives: bench options without callbacks. */
export type WorkerRequest = Omit<BenchOptions, "onHeld" | "onProgress" | "onPhase">;

// This file runs as a worker, where `self` is the worker scope; the
// project's type check sees window types, so the two members used are named here.
const scope = self as unknown as {
  onmessage: (event: MessageEvent<WorkerRequest>) => void;
  postMessage: (message: unknown) => void;
};

scope.onmessage = async function onRequest(event) {
  try {
    scope.postMessage({ report: await benchmark(event.data) });
  } catch (error) {
    scope.postMessage({ error: (error as Error).message });
  }
};
