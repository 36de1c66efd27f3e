/**
 * The echo server: listeners, admission, the echo loop per connection, the
 * idle/lifetime sweep and graceful shutdown, put together.
 *
 * @module
 */

import { acceptLoop } from "./accept.ts";
import { AccessList, type AccessListOptions, type Cidr } from "./acl.ts";
import {
  Admission,
  type AdmissionOptions,
  type Admitter,
  DEFAULT_MAX_CONNS,
  peerKey,
} from "./admission.ts";
import { bind, type Binding, type BindOptions, type StackMode } from "./listen.ts";
import { closeQuietly, formatAddr } from "../net.ts";
import { getLog, LogThrottle } from "../log.ts";
import { ProxyHeaderError, readProxyHeader } from "./proxy_protocol.ts";
import { BufferPool, pump, type PumpOptions, type Tally } from "./pump.ts";
import { RateLimiter } from "./rate_limit.ts";
import { type RefusedBy, Stats, type StatsSource } from "./stats.ts";
import { type Expirable, type ExpiryReason, startSweep } from "./sweep.ts";
import type { SecureContext } from "node:tls";

/** Everything {@linkcode serve} can be told; `0` disables a limit. */
export interface ServeOptions extends BindOptions, AdmissionOptions {
  /**
   * Milliseconds with no byte in either direction before a connection is closed.
   * @default {300000}
   */
  idleTimeout?: number;
  /**
   * Milliseconds after which any connection is closed.
   * @default {3600000}
   */
  maxLifetime?: number;
  /**
   * Buffers of the echo loop: the size a connection idles with, and the
   * size and number of the large buffers lent to bursts.
   * @default {{ minBuffer: 1024, maxBuffer: 65024, poolBuffers: 256 }}
   */
  buffers?: { minBuffer?: number; maxBuffer?: number; poolBuffers?: number };
  /**
   * Admission to use instead of a private one, e.g. one shared by workers.
   * @default {an Admission with maxConns and maxConnsPerIp}
   */
  admission?: Admitter;
  /**
   * Who may connect (`--allow`, `--deny`).
   * @default {everyone}
   */
  access?: AccessListOptions;
  /**
   * New connections per second allowed from one address (token bucket); 0 for no limit.
   * @default {0}
   */
  acceptRate?: number;
  /**
   * Expect a PROXY protocol header (v1 or v2) from these proxies, and
   * treat the client it names as the peer.
   * @default {undefined}
   */
  proxyProtocol?: { trusted: Cidr[] };
  /**
   * Serve TLS with this certificate and key (from `secureContext` in
   * `tls.ts`): on `port` when `tls.port` is not given, otherwise on
   * `tls.port` beside plain TCP on `port`. `handshakeTimeout`: milliseconds
   * a client has to complete the handshake (default 5000).
   * @default {undefined}
   */
  tls?: { context: SecureContext; port?: number; handshakeTimeout?: number };
}

/** How long a trusted proxy has to send its PROXY header. */
const PROXY_HEADER_TIMEOUT = 10_000;

/** Default idle timeout: five minutes. */
export const DEFAULT_IDLE_TIMEOUT = 300_000;

/** Default maximum connection lifetime: one hour. */
export const DEFAULT_MAX_LIFETIME = 3_600_000;

/** Default time a client has to complete the TLS handshake: five seconds. */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT = 5_000;

/** Default time open connections get to finish on shutdown: ten seconds. */
export const DEFAULT_DRAIN_TIMEOUT = 10_000;

/** How {@linkcode Server.shutdown} treats open connections. */
export interface ShutdownOptions {
  /**
   * Milliseconds open connections get to finish before they are closed.
   * A second call with 0 cuts a running drain short.
   * @default {10000}
   */
  drainTimeout?: number;
}

/** A running echo server. */
export interface Server {
  /** Bound addresses, as `[::]:40007` and `0.0.0.0:40007`. */
  readonly addresses: string[];
  /** The port all listeners share (useful with port 0). */
  readonly port: number;
  /** The TLS port, when TLS is served apart from `port`. */
  readonly tlsPort?: number;
  /** How the listeners cover IPv4 and IPv6. */
  readonly mode: StackMode;
  /** Why IPv6 is not served, when `mode` is `ipv4-only`. */
  readonly ipv6Error?: string;
  /** Live counters. */
  readonly stats: StatsSource;
  /**
   * Stops accepting, lets open connections drain, closes what is left, and
   * resolves when every connection is closed.
   */
  shutdown(options?: ShutdownOptions): Promise<void>;
}

type CloseReason = ExpiryReason | "shutdown";

/** Who a new connection is from, and how it is to be served. */
interface Arrival {
  /** The address it is counted under (see `peerKey`). */
  ip: string;
  /** `host:port` for the log. */
  peer: string;
  /** Whether it arrived on a TLS listener. */
  tls: boolean;
  /** Bytes read after a PROXY header. */
  early?: Uint8Array;
}

interface Session extends Expirable, Tally {
  conn: Deno.Conn;
  tls: boolean;
  ip: string;
  peer: string;
  // Writable here, read-only to the sweep: restated to reconcile the two.
  bytesIn: number;
  bytesOut: number;
  closing?: CloseReason;
}

const LOG_EVERY_MS = 5_000;

/**
 * Binds and starts serving. Throws {@linkcode RuntimeError} or
 * {@linkcode UsageError} from binding with a message for the user.
 */
export function serve(options: ServeOptions = {}): Server {
  const context = options.tls?.context;
  const handshakeTimeout = options.tls?.handshakeTimeout ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT;
  const tlsApart = options.tls?.port !== undefined;
  const binding = bind(options);
  let tlsBinding: Binding | undefined;
  if (tlsApart) {
    try {
      tlsBinding = bind({ ...options, port: options.tls!.port });
    } catch (error) {
      for (const listener of binding.listeners) listener.close();
      throw error;
    }
  }
  const tlsListeners = new Set(context ? (tlsBinding ?? binding).listeners : []);
  const listeners = [...binding.listeners, ...(tlsBinding?.listeners ?? [])];
  const access = options.access && new AccessList(options.access);
  const acceptRate = options.acceptRate ? new RateLimiter(options.acceptRate) : undefined;
  const trusted = options.proxyProtocol && new AccessList({ allow: options.proxyProtocol.trusted });
  const maxConns = options.maxConns ?? DEFAULT_MAX_CONNS;
  const awaitingHeader = new Set<Deno.Conn>();
  const log = getLog();
  const connLog = getLog("conn");
  const stats = new Stats();
  const admission = options.admission ?? new Admission(options);
  const sessions = new Set<Session>();
  const pumpOptions: PumpOptions = {
    totals: stats,
    minBuffer: options.buffers?.minBuffer,
    pool: new BufferPool({
      size: options.buffers?.maxBuffer,
      limit: options.buffers?.poolBuffers,
    }),
  };
  const refusalThrottle = new LogThrottle(LOG_EVERY_MS);
  const acceptThrottle = new LogThrottle(LOG_EVERY_MS);
  const failureThrottle = new LogThrottle(LOG_EVERY_MS);
  let onEmpty: (() => void) | undefined;
  let cutDrain: (() => void) | undefined;
  let stopping: Promise<void> | undefined;

  const sweep = startSweep(sessions, {
    idleTimeout: options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT,
    maxLifetime: options.maxLifetime ?? DEFAULT_MAX_LIFETIME,
    handshakeTimeout: context ? handshakeTimeout : 0,
    onExpire(session, reason) {
      if (session.closing !== undefined) return;
      stats.expired[reason]++;
      end(session, reason);
    },
  });

  for (const listener of listeners) {
    const where = formatAddr(listener.addr);
    const tls = tlsListeners.has(listener);
    acceptLoop(listener, (conn) => accepted(conn, tls), {
      onError(error, retryInMs) {
        if (retryInMs === 0) {
          // One peer's connection died before it was taken: not a server fault.
          stats.acceptAborted++;
          if (log.isEnabledFor("debug")) {
            log.debug("a connection on {listener} died before it was accepted: {error}", {
              listener: where,
              error: error.message,
            });
          }
          return;
        }
        stats.acceptErrors++;
        const held = acceptThrottle.take();
        if (held === undefined) return;
        log.error(
          "accept failed on {listener}: {error}; retrying in {retryInMs} ms ({held} more failures not logged)",
          { listener: where, error: error.message, retryInMs, held },
        );
      },
    });
  }

  function accepted(conn: Deno.Conn, tls: boolean): void {
    stats.accepted++;
    const remote = conn.remoteAddr as Deno.NetAddr;
    const ip = peerKey(remote.hostname);
    if (trusted?.matches(ip)) {
      fromProxy(conn, ip, tls);
      return;
    }
    admit(conn, { ip, peer: formatAddr(remote), tls });
  }

  /**
   * A connection from a trusted proxy: the real client is in its PROXY
   * header (sent in the clear, before any TLS). Waiting for it takes a place
   * under --max-conns, so a flood of silent proxy connections is bounded too.
   */
  async function fromProxy(conn: Deno.Conn, proxyIp: string, tls: boolean): Promise<void> {
    if (maxConns > 0 && awaitingHeader.size + sessions.size >= maxConns) {
      return refuse(conn, proxyIp, "max-conns");
    }
    awaitingHeader.add(conn);
    try {
      const header = await readProxyHeader(conn, PROXY_HEADER_TIMEOUT);
      if (stopping !== undefined) throw new ProxyHeaderError("shutting down");
      const source = header.source;
      const ip = source ? peerKey(source.hostname) : proxyIp;
      const peer = formatAddr(source ? { transport: "tcp", ...source } : conn.remoteAddr);
      admit(conn, { ip, peer, tls, early: header.rest });
    } catch (error) {
      refuse(conn, proxyIp, "proxy-header", (error as Error).message);
    } finally {
      awaitingHeader.delete(conn);
    }
  }

  function admit(conn: Deno.Conn, who: Arrival): void {
    const { ip, peer, tls, early } = who;
    if (access !== undefined && !access.permits(ip)) return refuse(conn, ip, "denied");
    if (acceptRate !== undefined && !acceptRate.take(ip)) return refuse(conn, ip, "accept-rate");
    const refusal = admission.admit(ip);
    if (refusal !== undefined) return refuse(conn, ip, refusal);
    const now = performance.now();
    const session: Session = {
      conn,
      ip,
      peer,
      bytesIn: 0,
      bytesOut: 0,
      openedAt: now,
      seenBytes: 0,
      quietSince: now,
      tls,
      handshakeBy: tls ? now + handshakeTimeout : undefined,
    };
    sessions.add(session);
    stats.active++;
    if (connLog.isEnabledFor("debug")) {
      connLog.debug("open {peer}", { peer: session.peer });
    }
    run(session, early);
  }

  function refuse(conn: Deno.Conn, ip: string, reason: RefusedBy, detail?: string): void {
    stats.refused[reason]++;
    closeQuietly(conn);
    logRefusal(ip, reason, detail);
  }

  async function run(session: Session, early: Uint8Array | undefined): Promise<void> {
    let failure: Error | undefined;
    try {
      // Echo replies are small and awaited: send them at once (no Nagle).
      const conn = session.conn as Deno.TcpConn;
      conn.setNoDelay(true);
      if (session.tls) {
        // Loaded on first use: a server without TLS never loads Node's TLS.
        const { echoTls } = await import("./tls.ts");
        await echoTls(conn, session, {
          context: context!,
          totals: stats,
          early,
          onSecure() {
            session.handshakeBy = undefined;
          },
        });
      } else {
        await pump(conn, session, early ? { ...pumpOptions, early } : pumpOptions);
      }
    } catch (error) {
      if (session.closing === undefined && !isDisconnect(error)) {
        failure = error as Error;
      }
    } finally {
      closeQuietly(session.conn);
      sessions.delete(session);
      admission.release(session.ip);
      stats.active--;
    }
    // E.g. a plain-TCP client on the TLS port: one line per interval, not per client.
    const held = failure === undefined ? undefined : failureThrottle.take();
    if (failure !== undefined && held !== undefined) {
      connLog.warning("connection from {peer} failed: {error} ({held} more failures not logged)", {
        peer: session.peer,
        error: failure.message,
        held,
      });
    }
    if (connLog.isEnabledFor("debug")) {
      connLog.debug(
        "close {peer} after {durationMs} ms: {bytesIn} bytes in, {bytesOut} bytes out ({reason})",
        {
          peer: session.peer,
          durationMs: Math.round(performance.now() - session.openedAt),
          bytesIn: session.bytesIn,
          bytesOut: session.bytesOut,
          reason: session.closing ?? (failure ? "error" : "peer-closed"),
        },
      );
    }
    if (sessions.size === 0) onEmpty?.();
  }

  function end(session: Session, reason: CloseReason): void {
    session.closing = reason;
    closeQuietly(session.conn);
  }

  function logRefusal(ip: string, reason: RefusedBy, detail?: string): void {
    const held = refusalThrottle.take();
    if (held === undefined) return;
    log.warning(
      "refused {ip}: {reason}{detail} ({refused} refused so far, {held} refusals not logged)",
      {
        ip,
        reason,
        detail: detail === undefined ? "" : ` (${detail})`,
        refused: stats.refusedTotal,
        held,
      },
    );
  }

  function shutdown(shutdownOptions: ShutdownOptions = {}): Promise<void> {
    const drainTimeout = shutdownOptions.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT;
    if (stopping !== undefined) {
      if (drainTimeout === 0) cutDrain?.();
      return stopping;
    }
    stopping = (async () => {
      for (const listener of listeners) closeQuietly(listener);
      for (const conn of awaitingHeader) closeQuietly(conn);
      sweep.stop();
      const empty = new Promise<void>((resolve) => {
        onEmpty = resolve;
        if (sessions.size === 0) resolve();
      });
      if (sessions.size > 0 && drainTimeout > 0) {
        log.info(
          "draining {active} connections for up to {drainTimeoutMs} ms",
          {
            active: sessions.size,
            drainTimeoutMs: drainTimeout,
          },
        );
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
        log.info("closing {active} connections still open", {
          active: sessions.size,
        });
        for (const session of sessions) end(session, "shutdown");
      }
      await empty;
    })();
    return stopping;
  }

  return {
    addresses: listeners.map((l) => formatAddr(l.addr) + (tlsListeners.has(l) ? " (TLS)" : "")),
    port: binding.port,
    tlsPort: tlsBinding?.port,
    mode: binding.mode,
    ipv6Error: binding.ipv6Error,
    stats,
    shutdown,
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
