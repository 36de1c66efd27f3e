/**
 * One listening socket of the echo server (the listener role): its accept
 * loop (`accept.ts`, which backs off instead of dying), the counts of its
 * port, and its accept failures counted and logged sparingly.
 *
 * @module
 */

import { getLog, type LogThrottle } from "../log.ts";
import { closeQuietly, formatAddr } from "../net.ts";
import { acceptLoop } from "./accept.ts";
import type { PortCounts, Stats } from "./stats.ts";

/** What a {@linkcode Listener} reports to. */
export interface ListenerOptions {
  /** Whether connections on it are TLS. */
  tls: boolean;
  /** The server's counters. */
  stats: Stats;
  /** The counts of its port, when several ports are served. */
  port?: PortCounts;
  /** Shared by the server's listeners: one accept-failure line per interval. */
  throttle: LogThrottle;
  /** Takes each accepted connection, with whether it is TLS. */
  accepted: (conn: Deno.Conn, tls: boolean) => void;
}

/** One listening socket and its accept loop. */
export class Listener {
  #socket: Deno.Listener;
  #options: ListenerOptions;
  #where: string;

  /** Starts accepting on `socket` until {@linkcode Listener.close}. */
  constructor(socket: Deno.Listener, options: ListenerOptions) {
    this.#socket = socket;
    this.#options = options;
    this.#where = formatAddr(socket.addr);
    acceptLoop(socket, (conn) => this.#accepted(conn), {
      onError: (error, retryInMs) => this.#failed(error, retryInMs),
    });
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.#socket.addr as Deno.NetAddr;
  }

  /** The bound address, as `[::]:40007`, with ` (TLS)` when it serves TLS. */
  get address(): string {
    return this.#where + (this.#options.tls ? " (TLS)" : "");
  }

  /** Stops accepting; the accept loop then ends. */
  close(): void {
    closeQuietly(this.#socket);
  }

  #accepted(conn: Deno.Conn): void {
    if (this.#options.port !== undefined) this.#options.port.accepted++;
    this.#options.accepted(conn, this.#options.tls);
  }

  /** A failed accept: counted, and logged sparingly. */
  #failed(error: Error, retryInMs: number): void {
    const { stats, throttle } = this.#options;
    const log = getLog();
    if (retryInMs === 0) {
      // One peer's connection died before it was taken: not a server fault.
      stats.count.acceptAborted++;
      if (log.isEnabledFor("debug")) {
        log.debug("a connection on {listener} died before it was accepted: {error}", {
          listener: this.#where,
          error: error.message,
        });
      }
      return;
    }
    stats.count.acceptErrors++;
    const held = throttle.take();
    if (held === undefined) return;
    log.error(
      "accept failed on {listener}: {error}; retrying in {retryInMs} ms ({held} more failures not logged)",
      { listener: this.#where, error: error.message, retryInMs, held },
    );
  }
}
