/**
 * The shutdown of a server (the drain): stop taking connections, give the
 * open ones the drain timeout to finish, then close the rest; a second call
 * with a drain timeout of 0 cuts a running drain short.
 *
 * @module
 */

import { getLog } from "../log.ts";

/** What the drain closes: a connection echod can end. */
export interface Closable {
  /** Closes the connection; its session then ends. */
  end(reason: "shutdown"): void;
}

/** One server's shutdown, started once. */
export class Drain {
  #open: ReadonlySet<Closable>;
  #empty = Promise.withResolvers<void>();
  #cut = Promise.withResolvers<void>();
  #done?: Promise<void>;

  /** A drain of `open`, the live set of open connections. */
  constructor(open: ReadonlySet<Closable>) {
    this.#open = open;
  }

  /** Whether the drain has begun. */
  get started(): boolean {
    return this.#done !== undefined;
  }

  /** Tells the drain a connection has ended (after it left the open set). */
  ended(): void {
    if (this.started && this.#open.size === 0) this.#empty.resolve();
  }

  /**
   * Calls `stop` (stop accepting) once, waits up to `drainTimeout` ms for
   * the open connections to end, closes the rest, and resolves when none is
   * open. A later call returns the same promise; with 0 it ends the wait.
   */
  run(stop: () => void, drainTimeout: number): Promise<void> {
    if (this.#done !== undefined) {
      if (drainTimeout === 0) this.#cut.resolve();
      return this.#done;
    }
    this.#done = this.#drain(stop, drainTimeout);
    return this.#done;
  }

  async #drain(stop: () => void, drainTimeout: number): Promise<void> {
    const log = getLog();
    if (this.#open.size === 0) this.#empty.resolve();
    stop();
    if (this.#open.size > 0 && drainTimeout > 0) {
      log.info("draining {active} connections for up to {drainTimeoutMs} ms", {
        active: this.#open.size,
        drainTimeoutMs: drainTimeout,
      });
      const timer = setTimeout(this.#cut.resolve, drainTimeout);
      await Promise.race([this.#empty.promise, this.#cut.promise]);
      clearTimeout(timer);
    }
    if (this.#open.size > 0) {
      log.info("closing {active} connections still open", { active: this.#open.size });
      for (const open of this.#open) open.end("shutdown");
    }
    await this.#empty.promise;
  }
}
