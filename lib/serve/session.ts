/**
 * One admitted connection (the handler role): its counters and deadlines,
 * how it echoes (the echo loop of `pump.ts`, or the fault loop of
 * `fault_pump.ts` under a profile, after a greeting or over TLS when asked),
 * and how echod ends it.
 *
 * @module
 */

import type { SecureContext } from "node:tls";
import { closeQuietly, hostPort, writeAll } from "../net.ts";
import { faultPump, type FaultTally } from "./fault_pump.ts";
import type { FaultKey, FaultProfile } from "./fault_spec.ts";
import type { Arrival } from "./gate.ts";
import type { Greeting } from "./greeting.ts";
import { pump, type PumpOptions, type Tally } from "./pump.ts";
import { resetConn } from "./reset.ts";
import type { PortCounts } from "./stats.ts";
import type { Expirable, ExpiryReason } from "./sweep.ts";

/** Why echod closed a connection itself. */
export type CloseReason = ExpiryReason | "shutdown";

/** How sessions echo: the echo loop's options, and TLS when the connection came in on TLS. */
export interface Echo {
  /** The echo loop's options, shared by every session. */
  pump: PumpOptions;
  /** Read per connection: the context may be replaced while serving (SIGHUP). */
  tls?: { readonly context: SecureContext };
  /** The server's byte counters. */
  totals: Tally;
  /** The line sent to each connection before any echo. */
  greeting?: Greeting;
}

/** Where a session came from and what it is held to. */
export interface SessionOptions {
  /** Milliseconds a TLS client has to complete its handshake. */
  handshakeTimeout: number;
  /** The counts of the port it came in on, when several are served. */
  port?: PortCounts;
  /** The fault profile applied to it (`--fault`), if any. */
  fault?: FaultProfile;
  /** Told each time a cut of the profile acts. */
  onCut?: (key: FaultKey) => void;
}

/** One admitted connection: its counters, its deadlines, and how it ends. */
export class Session implements Expirable, FaultTally {
  /** Bytes read from the peer. */
  bytesIn = 0;
  /** Bytes written back to the peer. */
  bytesOut = 0;
  /** Bytes a fault profile read and discarded on purpose. */
  bytesDropped = 0;
  /** Sweep bookkeeping (see `sweep.ts`). */
  seenBytes = 0;
  /** `performance.now()` when it was admitted. */
  readonly openedAt: number;
  /** Sweep bookkeeping (see `sweep.ts`). */
  quietSince: number;
  /** When the TLS handshake must be done by; cleared once it is. */
  handshakeBy?: number;
  /** Set when echod itself closes the connection, and why. */
  closing?: CloseReason;
  /** The counts of the port it came in on, when several are served. */
  readonly port?: PortCounts;
  /** The fault profile applied to it, if any. */
  readonly fault?: FaultProfile;
  #onCut?: (key: FaultKey) => void;
  // Fault sessions only: resolved when echod closes it, to end the fault loop's waits.
  #stopped?: PromiseWithResolvers<void>;

  /** A session for `conn`, admitted as `arrival`; `run` starts it. */
  constructor(readonly conn: Deno.Conn, readonly arrival: Arrival, options: SessionOptions) {
    this.openedAt = this.quietSince = performance.now();
    if (arrival.tls) this.handshakeBy = this.openedAt + options.handshakeTimeout;
    this.port = options.port;
    if (options.fault !== undefined) {
      this.fault = options.fault;
      this.#onCut = options.onCut;
      this.#stopped = Promise.withResolvers<void>();
    }
  }

  /**
   * Echoes until the peer closes; rejects when the connection fails or is
   * closed under it. Never throws: its caller only handles the promise.
   */
  run(echo: Echo): Promise<void> {
    const conn = this.conn as Deno.TcpConn;
    try {
      // Echo replies are small and awaited: send them at once (no Nagle).
      conn.setNoDelay(true);
    } catch (error) {
      // Reset or closed before it was served.
      return Promise.reject(error);
    }
    // The common case goes straight to the echo loop, with no async frame
    // of its own held for the life of every connection.
    if (!this.arrival.tls && echo.greeting === undefined) return this.#pump(conn, echo);
    return this.#greetAndEcho(conn, echo);
  }

  /** The echo loop (the fault loop under a profile), after whatever came with a PROXY header. */
  #pump(conn: Deno.TcpConn, echo: Echo): Promise<void> {
    const { early } = this.arrival;
    if (this.fault === undefined) {
      return pump(conn, this, early ? { ...echo.pump, early } : echo.pump);
    }
    return faultPump(conn, this, {
      ...this.#faultOptions(),
      reset: () => resetConn(conn),
      totals: echo.totals,
      early,
    });
  }

  /** What the fault loop needs of the session, on plain TCP or TLS. */
  #faultOptions(): {
    profile: FaultProfile;
    stopped: Promise<void>;
    onCut?: (key: FaultKey) => void;
  } {
    return { profile: this.fault!, stopped: this.#stopped!.promise, onCut: this.#onCut };
  }

  /** TLS, a greeting, or both, then the echo. */
  async #greetAndEcho(conn: Deno.TcpConn, echo: Echo): Promise<void> {
    const { early, tls } = this.arrival;
    const greeting = echo.greeting?.render({
      local: conn.localAddr as Deno.NetAddr,
      client: hostPort(this.arrival.ip, this.arrival.port),
      proxy: this.arrival.proxy,
      transport: tls ? "tls" : "tcp",
      fault: this.fault?.name,
    });
    if (!tls) {
      if (greeting !== undefined) await writeAll(conn, greeting);
      return await this.#pump(conn, echo);
    }
    const options = {
      context: echo.tls!.context,
      totals: echo.totals,
      early,
      onSecure: () => this.handshakeBy = undefined,
      greeting,
    };
    // Loaded on first use: a server without TLS never loads Node's TLS.
    if (this.fault !== undefined) {
      const { faultTls } = await import("./tls_fault.ts");
      return await faultTls(conn, this, { ...options, fault: this.#faultOptions() });
    }
    const { echoTls } = await import("./tls.ts");
    await echoTls(conn, this, options);
  }

  /** Closes the connection for `reason`; `run` then ends. */
  end(reason: CloseReason): void {
    this.closing ??= reason;
    closeQuietly(this.conn);
    this.#stopped?.resolve();
  }
}
