/**
 * Polling, for what gives no event to wait on: a file being written, a
 * service manager's state, a port about to open, a counter in /metrics, a
 * writer that has stalled. Prefer a log record ({@linkcode Echod.waitFor})
 * where there is one.
 *
 * @module
 */

/** Options for {@linkcode poll}. */
export interface PollOptions {
  /** What is waited for, for the timeout's message, e.g. "the service to stop". */
  what: string;
  /** When to give up (a guard against a hung test, not a sleep). @default {20_000} */
  timeoutMs?: number;
  /** How long to wait between two checks. @default {50} */
  intervalMs?: number;
}

/**
 * Calls `check` until it returns something other than `undefined`, and
 * returns that; `intervalMs` apart. A check that throws counts as "not
 * yet" (a refused connection, a file not there yet). After `timeoutMs`
 * it throws, with the last error or the last `describe()` if given.
 */
export async function poll<T>(
  check: () => T | undefined | Promise<T | undefined>,
  options: PollOptions & { describe?: () => string },
): Promise<T> {
  const deadline = performance.now() + (options.timeoutMs ?? 20_000);
  let lastError: unknown;
  for (;;) {
    try {
      const result = await check();
      if (result !== undefined) return result;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() > deadline) {
      const last = lastError !== undefined
        ? `; last error: ${(lastError as Error).message ?? lastError}`
        : options.describe === undefined
        ? ""
        : `; last: ${options.describe()}`;
      throw new Error(
        `waited ${options.timeoutMs ?? 20_000} ms for ${options.what} in vain${last}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50)); // the poll's interval
  }
}

/**
 * Resolves once `progress()` (bytes written, say) has not changed between
 * two checks `intervalMs` apart, with its value then: a stall is the
 * absence of an event, so it can only be sampled.
 */
export async function untilStalled(
  progress: () => number,
  options: PollOptions,
): Promise<number> {
  let last: number | undefined;
  return await poll(() => {
    const now = progress();
    if (now === last) return now;
    last = now;
    return undefined;
  }, { ...options, describe: () => `still moving at ${last}` });
}
