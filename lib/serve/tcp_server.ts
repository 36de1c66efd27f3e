/**
 * The TCP echo server, put together from named parts: each
 * {@linkcode Listener} accepts (`listener.ts`), the {@linkcode Gate} admits
 * (`gate.ts`), a {@linkcode Session} runs one connection (`session.ts`),
 * the sweep expires idle and old ones (`sweep.ts`), and a
 * {@linkcode Drain} shuts the server down (`drain.ts`).
 *
 * @module
 */

import { getLog, LogThrottle } from "../log.ts";
import { closeQuietly, isDisconnect } from "../net.ts";
import { Admission, type Admitter } from "./admission.ts";
import {
  DEFAULT_DRAIN_TIMEOUT,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_MAX_CONNS,
  DEFAULT_MAX_LIFETIME,
  DEFAULT_TLS_HANDSHAKE_TIMEOUT,
  LOG_INTERVAL,
} from "./defaults.ts";
import { Drain } from "./drain.ts";
import { actsOnTcp, type FaultProfile, type FaultRule, profileFor, tcpKeys } from "./fault_spec.ts";
import { resetConn } from "./reset.ts";
import { type Arrival, Gate, peerOf } from "./gate.ts";
import { Greeting, readHostName } from "./greeting.ts";
import { bindListeners } from "./listen.ts";
import { Listener } from "./listener.ts";
import type { ServeOptions, Server, ShutdownOptions } from "./options.ts";
import { BufferPool } from "./pump.ts";
import { type Echo, Session } from "./session.ts";
import { EXPIRED, faultCounter, type PortCounts, Stats } from "./stats.ts";
import { type ExpiryReason, startSweep, type Sweep } from "./sweep.ts";
import type { StackMode } from "./listen.ts";

/**
 * A running TCP echo server in this thread: it owns its listeners, its
 * sessions, the counts per port and its shutdown. Binding happens in the
 * constructor, which throws {@linkcode RuntimeError} or
 * {@linkcode UsageError} with a message for the user, leaving nothing open.
 */
export class TcpServer implements Server {
  /** Bound addresses, as `[::]:40007` and `0.0.0.0:40007 (TLS)`. */
  readonly addresses: string[];
  /** Bound addresses, one per listener. */
  readonly addrs: Deno.NetAddr[];
  /** The port all listeners share (useful with port 0); the first when there are several. */
  readonly port: number;
  /** Every plain or TLS port served, `port` first (not `tlsPort`). */
  readonly ports: number[];
  /** The TLS port, when TLS is served apart from `port`. */
  readonly tlsPort?: number;
  /** How the listeners cover IPv4 and IPv6. */
  readonly mode: StackMode;
  /** Why IPv6 is not served, when `mode` is `ipv4-only`. */
  readonly ipv6Error?: string;
  /** Live counters. */
  readonly stats: Stats = new Stats();

  #sessions = new Set<Session>();
  #listeners: Listener[];
  #admission: Admitter;
  #gate: Gate;
  #sweep: Sweep;
  #drain = new Drain(this.#sessions);
  #echo: Echo;
  #handshakeTimeout: number;
  #faults: FaultRule[];
  #failures = new LogThrottle(LOG_INTERVAL);
  #log = getLog("conn");

  /** Binds as `options` say and starts serving. */
  constructor(options: ServeOptions = {}) {
    const bound = bindListeners(options);
    this.port = bound.main.port;
    this.ports = bound.ports;
    this.tlsPort = bound.apart?.port;
    this.mode = bound.main.mode;
    this.ipv6Error = bound.main.ipv6Error;
    this.#admission = options.admission ?? new Admission(options);
    this.#handshakeTimeout = options.tls?.handshakeTimeout ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT;
    this.#echo = echoOf(options, this.stats);
    this.#faults = (options.faults ?? []).filter((rule) => actsOnTcp(rule.profile));
    this.#gate = new Gate({
      admission: this.#admission,
      stats: this.stats,
      access: options.access,
      acceptRate: options.acceptRate,
      trusted: options.proxyProtocol?.trusted,
      maxConns: options.maxConns ?? DEFAULT_MAX_CONNS,
      open: () => this.#sessions.size,
      admitted: (conn, arrival) => this.#open(conn, arrival),
    });
    this.#sweep = startSweep(this.#sessions, {
      idleTimeout: options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT,
      maxLifetime: options.maxLifetime ?? DEFAULT_MAX_LIFETIME,
      handshakeTimeout: options.tls ? this.#handshakeTimeout : 0,
      onExpire: (session, reason) => this.#expire(session, reason),
    });
    this.#listeners = this.#listen(bound.listeners, bound.tls, bound.ports.length > 1);
    this.addresses = this.#listeners.map((listener) => listener.address);
    this.addrs = this.#listeners.map((listener) => listener.addr);
    this.#seedFaultCounts();
  }

  /** Every fault counter this server can advance, at 0, so /metrics shows them from the start. */
  #seedFaultCounts(): void {
    if (this.#faults.length === 0) return;
    for (const port of new Set(this.addrs.map((addr) => addr.port))) {
      const profile = profileFor(this.#faults, port);
      if (profile === undefined) continue;
      const keys = [...tcpKeys(profile)];
      if (profile.refuse) keys.push("refuse");
      if (profile.stallAfter !== undefined) keys.push("stall-after");
      if (profile.resetAfter !== undefined) keys.push("reset-after");
      if (profile.closeAfter !== undefined) keys.push("close-after");
      for (const key of keys) this.stats.faults.set(faultCounter(port, key), 0);
    }
  }

  /** The profile to apply to a new connection on `port`, drawn by its `p`, if any. */
  #faultFor(port: number): FaultProfile | undefined {
    if (this.#faults.length === 0) return undefined;
    const profile = profileFor(this.#faults, port);
    if (profile === undefined || Math.random() >= profile.p) return undefined;
    return profile;
  }

  /**
   * Stops accepting, lets open connections finish for the drain timeout,
   * then closes the rest; resolves when every connection is closed. A second
   * call with a drain timeout of 0 cuts a running drain short.
   */
  shutdown(options: ShutdownOptions = {}): Promise<void> {
    return this.#drain.run(
      () => this.#stopAccepting(),
      options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT,
    );
  }

  /** Starts a {@linkcode Listener} per socket, with the counts of its port when `perPort`. */
  #listen(sockets: Deno.Listener[], tls: Set<Deno.Listener>, perPort: boolean): Listener[] {
    const throttle = new LogThrottle(LOG_INTERVAL);
    return sockets.map((socket) => {
      const port = perPort ? this.#portCounts((socket.addr as Deno.NetAddr).port) : undefined;
      return new Listener(socket, {
        tls: tls.has(socket),
        stats: this.stats,
        port,
        throttle,
        accepted: (conn, isTls) => this.#gate.arrive(conn, isTls),
      });
    });
  }

  /** The counts of `port`, shared by its IPv6 and IPv4 listeners. */
  #portCounts(port: number): PortCounts {
    let counts = this.stats.byPort.get(port);
    if (counts === undefined) {
      this.stats.byPort.set(port, counts = { port, accepted: 0, active: 0 });
    }
    return counts;
  }

  #stopAccepting(): void {
    for (const listener of this.#listeners) listener.close();
    this.#gate.close();
    this.#sweep.stop();
  }

  /** Runs a session for an admitted connection. */
  #open(conn: Deno.Conn, arrival: Arrival): void {
    const localPort = (conn.localAddr as Deno.NetAddr).port;
    const port = this.stats.byPort.size > 0 ? this.stats.byPort.get(localPort) : undefined;
    const fault = this.#faultFor(localPort);
    if (fault?.refuse) return this.#refuseByFault(conn, arrival, localPort);
    if (fault !== undefined) {
      for (const key of tcpKeys(fault)) this.stats.countFault(localPort, key);
    }
    const session = new Session(conn, arrival, {
      handshakeTimeout: this.#handshakeTimeout,
      port,
      fault,
      onCut: fault && ((key) => this.stats.countFault(localPort, key)),
    });
    this.#sessions.add(session);
    this.stats.count.active++;
    if (port !== undefined) port.active++;
    if (this.#log.isEnabledFor("debug")) {
      this.#log.debug("open {peer}{profile}", {
        peer: peerOf(arrival),
        profile: fault === undefined ? "" : ` with fault ${fault.name}`,
        fault: fault?.name,
      });
    }
    // Two small callbacks rather than an async frame held for the life of
    // every connection.
    session.run(this.#echo).then(
      () => this.#close(session, undefined),
      (error: Error) => this.#close(session, error),
    );
  }

  /** `refuse`: admitted, then reset at once, holding nothing. */
  #refuseByFault(conn: Deno.Conn, arrival: Arrival, port: number): void {
    this.stats.countFault(port, "refuse");
    this.#admission.release(arrival.ip);
    resetConn(conn);
    if (this.#log.isEnabledFor("debug")) {
      this.#log.debug("reset {peer} at once (fault refuse)", {
        peer: peerOf(arrival),
        fault: "refuse",
      });
    }
  }

  #expire(session: Session, reason: ExpiryReason): void {
    if (session.closing !== undefined) return;
    this.stats.count[EXPIRED[reason]]++;
    session.end(reason);
  }

  /** Accounts for a session that has ended, with the error that ended it if any. */
  #close(session: Session, error: Error | undefined): void {
    const failure = error !== undefined && session.closing === undefined && !isDisconnect(error)
      ? error
      : undefined;
    closeQuietly(session.conn);
    this.#sessions.delete(session);
    this.#admission.release(session.arrival.ip);
    this.stats.count.active--;
    if (session.port !== undefined) session.port.active--;
    // What it had read but not yet echoed when the drain closed it: counted
    // once here, not in the echo loop.
    if (session.closing === "shutdown") {
      this.stats.count.drainCut += session.bytesIn - session.bytesOut - session.bytesDropped;
    }
    if (failure !== undefined) this.#logFailure(session, failure);
    if (this.#log.isEnabledFor("debug")) this.#logClose(session, failure);
    this.#drain.ended();
  }

  /** E.g. a plain-TCP client on the TLS port: one line per interval, not per client. */
  #logFailure(session: Session, failure: Error): void {
    const held = this.#failures.take();
    if (held === undefined) return;
    this.#log.warning(
      "connection from {peer} failed: {error} ({held} more failures not logged)",
      { peer: peerOf(session.arrival), error: failure.message, held },
    );
  }

  #logClose(session: Session, failure: Error | undefined): void {
    this.#log.debug(
      "close {peer} after {durationMs} ms: {bytesIn} bytes in, {bytesOut} bytes out ({reason}){profile}",
      {
        profile: session.fault === undefined ? "" : `, fault ${session.fault.name}`,
        fault: session.fault?.name,
        peer: peerOf(session.arrival),
        durationMs: Math.round(performance.now() - session.openedAt),
        bytesIn: session.bytesIn,
        bytesOut: session.bytesOut,
        reason: session.closing ?? (failure ? "error" : "peer-closed"),
      },
    );
  }
}

/** How the sessions of a server with `options` echo. */
function echoOf(options: ServeOptions, stats: Stats): Echo {
  return {
    pump: {
      totals: stats.count,
      minBuffer: options.buffers?.minBuffer,
      pool: new BufferPool({
        size: options.buffers?.maxBuffer,
        limit: options.buffers?.poolBuffers,
      }),
    },
    tls: options.tls,
    totals: stats.count,
    greeting: options.greeting === undefined
      ? undefined
      : new Greeting(options.greeting, readHostName()),
  };
}
