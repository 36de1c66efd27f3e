/**
 * Requests to stop: a stop signal, the Windows service manager, or
 * `POST /quitquitquit`. The first starts the shutdown (delay, then drain);
 * a later one means "now".
 *
 * @module
 */

import { getLog } from "../log.ts";

/** Collects stop requests from every source; the first one wins. */
export class StopRequests {
  #first = Promise.withResolvers<string>();
  #again = Promise.withResolvers<void>();
  #received = false;
  #now: () => void;

  /** Stop requests that call `now` (close every connection) when a second one comes. */
  constructor(now: () => void) {
    this.#now = now;
  }

  /** Resolves with what asked first (`SIGTERM`, `POST /quitquitquit`, …). */
  get first(): Promise<string> {
    return this.#first.promise;
  }

  /** Resolves when a second request comes: the delay and the drain end at once. */
  get again(): Promise<void> {
    return this.#again.promise;
  }

  /** Asks to stop; `by` names the asker in the log. */
  request(by: string): void {
    if (!this.#received) {
      this.#received = true;
      this.#first.resolve(by);
      return;
    }
    getLog().info("received {signal} again: closing all connections now", { signal: by });
    this.#again.resolve();
    this.#now();
  }
}
