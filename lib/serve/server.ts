/**
 * The echo server, put together from named parts: the listeners accept
 * (`accept.ts`), the {@linkcode Gate} admits (`gate.ts`), a
 * {@linkcode Session} runs one connection (the echo loop of `pump.ts`, or
 * TLS), the sweep expires idle and old ones (`sweep.ts`), and
 * {@linkcode Server.shutdown} drains.
 *
 * @module
 */

import type { SecureContext } from "node:tls";
import { getLog, LogThrottle } from "../log.ts";
import { closeQuietly, formatAddr, hostPort, writeAll } from "../net.ts";
import { Greeting, readHostName } from "./greeting.ts";
import { acceptLoop } from "./accept.ts";
import { Admission } from "./admission.ts";
import { type Arrival, Gate, peerOf } from "./gate.ts";
import { bindListeners } from "./listen.ts";
import {
  DEFAULT_DRAIN_TIMEOUT,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_MAX_CONNS,
  DEFAULT_MAX_LIFETIME,
  DEFAULT_TLS_HANDSHAKE_TIMEOUT,
  LOG_INTERVAL,
} from "./defaults.ts";
import type { ServeOptions, Server, ShutdownOptions } from "./options.ts";
import { BufferPool, pump, type PumpOptions, type Tally } from "./pump.ts";
import { EXPIRED, type PortCounts, Stats } from "./stats.ts";
import { type Expirable, type ExpiryReason, startSweep } from "./sweep.ts";

/** Why echod closed a connection itself. */
type CloseReason = ExpiryReason | "shutdown";

/** How sessions echo: the echo loop's options, and TLS when the connection came in on TLS. */
interface Echo {
  pump: PumpOptions;
  /** Read per connection: the context may be replaced while serving (SIGHUP). */
  tls?: { readonly context: SecureContext };
  totals: Tally;
  greeting?: Greeting;
}

/** One admitted connection: its counters, its deadlines, and how it ends. */
class Session implements Expirable, Tally {
  bytesIn = 0;
  bytesOut = 0;
  seenBytes = 0;
  readonly openedAt: number;
  quietSince: number;
  handshakeBy?: number;
  /** Set when echod itself closes the connection, and why. */
  closing?: CloseReason;
  /** The counts of the port it came in on, when several are served. */
  port?: PortCounts;

  constructor(readonly conn: Deno.Conn, readonly arrival: Arrival, handshakeTimeout: number) {
    this.openedAt = this.quietSince = performance.now();
    if (arrival.tls) this.handshakeBy = this.openedAt + handshakeTimeout;
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

  /** The echo loop, after whatever came with a PROXY header. */
  #pump(conn: Deno.TcpConn, echo: Echo): Promise<void> {
    const { early } = this.arrival;
    return pump(conn, this, early ? { ...echo.pump, early } : echo.pump);
  }

  /** TLS, a greeting, or both, then the echo. */
  async #greetAndEcho(conn: Deno.TcpConn, echo: Echo): Promise<void> {
    const { early, tls } = this.arrival;
    const greeting = echo.greeting?.render({
      local: conn.localAddr as Deno.NetAddr,
      client: hostPort(this.arrival.ip, this.arrival.port),
      proxy: this.arrival.proxy,
      transport: tls ? "tls" : "tcp",
    });
    if (!tls) {
      if (greeting !== undefined) await writeAll(conn, greeting);
      return await this.#pump(conn, echo);
    }
    // Loaded on first use: a server without TLS never loads Node's TLS.
    const { echoTls } = await import("./tls.ts");
    await echoTls(conn, this, {
      context: echo.tls!.context,
      totals: echo.totals,
      early,
      onSecure: () => this.handshakeBy = undefined,
      greeting,
    });
  }

  /** Closes the connection for `reason`; `run` then ends. */
  end(reason: CloseReason): void {
    this.closing ??= reason;
    closeQuietly(this.conn);
  }
}

/**
 * Binds and starts serving. Throws {@linkcode RuntimeError} or
 * {@linkcode UsageError} from binding with a message for the user.
 */
export function serve(options: ServeOptions = {}): Server {
  const bound = bindListeners(options);
  const stats = new Stats();
  const admission = options.admission ?? new Admission(options);
  const sessions = new Set<Session>();
  const handshakeTimeout = options.tls?.handshakeTimeout ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT;
  const echo: Echo = {
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
  const log = getLog();
  const connLog = getLog("conn");
  const failures = new LogThrottle(LOG_INTERVAL);
  const acceptFailures = new LogThrottle(LOG_INTERVAL);
  let onEmpty: (() => void) | undefined;

  const gate = new Gate({
    admission,
    stats,
    access: options.access,
    acceptRate: options.acceptRate,
    trusted: options.proxyProtocol?.trusted,
    maxConns: options.maxConns ?? DEFAULT_MAX_CONNS,
    open: () => sessions.size,
    admitted(conn, arrival) {
      const session = new Session(conn, arrival, handshakeTimeout);
      sessions.add(session);
      stats.count.active++;
      session.port = perPort ? stats.byPort.get((conn.localAddr as Deno.NetAddr).port) : undefined;
      if (session.port !== undefined) session.port.active++;
      if (connLog.isEnabledFor("debug")) connLog.debug("open {peer}", { peer: peerOf(arrival) });
      // Two small callbacks rather than an async frame held for the life of
      // every connection.
      session.run(echo).then(
        function ended() {
          finish(session, undefined);
        },
        function failed(error: Error) {
          finish(session, error);
        },
      );
    },
  });

  const sweep = startSweep(sessions, {
    idleTimeout: options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT,
    maxLifetime: options.maxLifetime ?? DEFAULT_MAX_LIFETIME,
    handshakeTimeout: options.tls ? handshakeTimeout : 0,
    onExpire(session, reason) {
      if (session.closing !== undefined) return;
      stats.count[EXPIRED[reason]]++;
      session.end(reason);
    },
  });

  const perPort = bound.ports.length > 1;
  for (const listener of bound.listeners) {
    const tls = bound.tls.has(listener);
    const port = (listener.addr as Deno.NetAddr).port;
    if (perPort && !stats.byPort.has(port)) {
      stats.byPort.set(port, { port, accepted: 0, active: 0 });
    }
    const counts = perPort ? stats.byPort.get(port) : undefined;
    acceptLoop(listener, function accepted(conn) {
      if (counts !== undefined) counts.accepted++;
      gate.arrive(conn, tls);
    }, {
      onError: acceptErrors(formatAddr(listener.addr), { stats, throttle: acceptFailures }),
    });
  }

  /** Accounts for a session that has ended, with the error that ended it if any. */
  function finish(session: Session, error: Error | undefined): void {
    const failure = error !== undefined && session.closing === undefined && !isDisconnect(error)
      ? error
      : undefined;
    closeQuietly(session.conn);
    sessions.delete(session);
    admission.release(session.arrival.ip);
    stats.count.active--;
    if (session.port !== undefined) session.port.active--;
    // What it had read but not yet echoed when the drain closed it: counted
    // once here, not in the echo loop.
    if (session.closing === "shutdown") stats.count.drainCut += session.bytesIn - session.bytesOut;
    // E.g. a plain-TCP client on the TLS port: one line per interval, not per client.
    const held = failure === undefined ? undefined : failures.take();
    if (failure !== undefined && held !== undefined) {
      connLog.warning("connection from {peer} failed: {error} ({held} more failures not logged)", {
        peer: peerOf(session.arrival),
        error: failure.message,
        held,
      });
    }
    if (connLog.isEnabledFor("debug")) {
      connLog.debug(
        "close {peer} after {durationMs} ms: {bytesIn} bytes in, {bytesOut} bytes out ({reason})",
        {
          peer: peerOf(session.arrival),
          durationMs: Math.round(performance.now() - session.openedAt),
          bytesIn: session.bytesIn,
          bytesOut: session.bytesOut,
          reason: session.closing ?? (failure ? "error" : "peer-closed"),
        },
      );
    }
    if (sessions.size === 0) onEmpty?.();
  }

  let stopping: Promise<void> | undefined;
  let cutDrain: (() => void) | undefined;

  /** Stops accepting, lets open connections finish for the drain timeout, then closes the rest. */
  function shutdown(shutdownOptions: ShutdownOptions = {}): Promise<void> {
    const drainTimeout = shutdownOptions.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT;
    if (stopping !== undefined) {
      if (drainTimeout === 0) cutDrain?.();
      return stopping;
    }
    const empty = new Promise<void>((resolve) => {
      onEmpty = resolve;
      if (sessions.size === 0) resolve();
    });
    stopping = (async () => {
      for (const listener of bound.listeners) closeQuietly(listener);
      gate.close();
      sweep.stop();
      if (sessions.size > 0 && drainTimeout > 0) {
        log.info("draining {active} connections for up to {drainTimeoutMs} ms", {
          active: sessions.size,
          drainTimeoutMs: drainTimeout,
        });
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          empty,
          new Promise<void>((resolve) => {
            cutDrain = resolve;
            timer = setTimeout(resolve, drainTimeout);
          }),
        ]);
        clearTimeout(timer);
      }
      if (sessions.size > 0) {
        log.info("closing {active} connections still open", { active: sessions.size });
        for (const session of sessions) session.end("shutdown");
      }
      await empty;
    })();
    return stopping;
  }

  return {
    addresses: bound.listeners.map((l) => formatAddr(l.addr) + (bound.tls.has(l) ? " (TLS)" : "")),
    port: bound.main.port,
    ports: bound.ports,
    tlsPort: bound.apart?.port,
    mode: bound.main.mode,
    ipv6Error: bound.main.ipv6Error,
    stats,
    shutdown,
  };
}

/** The accept loop's error report for one listener: counted, and logged sparingly. */
function acceptErrors(
  where: string,
  { stats, throttle }: { stats: Stats; throttle: LogThrottle },
): (error: Error, retryInMs: number) => void {
  const log = getLog();
  return function onError(error, retryInMs) {
    if (retryInMs === 0) {
      // One peer's connection died before it was taken: not a server fault.
      stats.count.acceptAborted++;
      if (log.isEnabledFor("debug")) {
        log.debug("a connection on {listener} died before it was accepted: {error}", {
          listener: where,
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
      { listener: where, error: error.message, retryInMs, held },
    );
  };
}

function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.TimedOut;
}
