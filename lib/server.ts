/**
 * The echo server: listeners, admission, the echo loop per connection, the
 * idle/lifetime sweep and graceful shutdown, put together.
 *
 * @module
 */

import { acceptLoop } from "./accept.ts";
import {
  Admission,
  type AdmissionOptions,
  type Admitter,
  peerKey,
  type RefusalReason,
} from "./admission.ts";
import { bind, type BindOptions, formatAddr, type StackMode } from "./listen.ts";
import { getLog, LogThrottle } from "./log.ts";
import { pump, type PumpOptions } from "./pump.ts";
import { Stats, type StatsSource } from "./stats.ts";
import { type Expirable, type ExpiryReason, startSweep } from "./timers.ts";

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
   * Buffer sizes for the echo loop.
   * @default {{ minBuffer: 1024, maxBuffer: 65536 }}
   */
  buffers?: Pick<PumpOptions, "minBuffer" | "maxBuffer">;
  /**
   * Admission to use instead of a private one, e.g. one shared by workers.
   * @default {an Admission with maxConns and maxConnsPerIp}
   */
  admission?: Admitter;
}

/** Default idle timeout: five minutes. */
export const DEFAULT_IDLE_TIMEOUT = 300_000;

/** Default maximum connection lifetime: one hour. */
export const DEFAULT_MAX_LIFETIME = 3_600_000;

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

interface Session extends Expirable {
  conn: Deno.Conn;
  ip: string;
  peer: string;
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
  const binding = bind(options);
  const log = getLog();
  const connLog = getLog("conn");
  const stats = new Stats();
  const admission = options.admission ?? new Admission(options);
  const sessions = new Set<Session>();
  const pumpOptions: PumpOptions = { totals: stats, ...options.buffers };
  const refusalThrottle = new LogThrottle(LOG_EVERY_MS);
  const acceptThrottle = new LogThrottle(LOG_EVERY_MS);
  let onEmpty: (() => void) | undefined;
  let cutDrain: (() => void) | undefined;
  let stopping: Promise<void> | undefined;

  const sweep = startSweep(sessions, {
    idleTimeout: options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT,
    maxLifetime: options.maxLifetime ?? DEFAULT_MAX_LIFETIME,
    onExpire(session, reason) {
      if (session.closing !== undefined) return;
      stats.expired[reason]++;
      end(session, reason);
    },
  });

  for (const listener of binding.listeners) {
    const where = formatAddr(listener.addr);
    acceptLoop(listener, admit, {
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

  function admit(conn: Deno.Conn): void {
    stats.accepted++;
    const remote = conn.remoteAddr as Deno.NetAddr;
    const ip = peerKey(remote.hostname);
    const refusal = admission.admit(ip);
    if (refusal !== undefined) {
      stats.refused[refusal]++;
      closeQuietly(conn);
      logRefusal(ip, refusal);
      return;
    }
    const now = performance.now();
    const session: Session = {
      conn,
      ip,
      peer: formatAddr(remote),
      bytesIn: 0,
      bytesOut: 0,
      openedAt: now,
      seenBytes: 0,
      quietSince: now,
    };
    sessions.add(session);
    stats.active++;
    if (connLog.isEnabledFor("debug")) {
      connLog.debug("open {peer}", { peer: session.peer });
    }
    run(session);
  }

  async function run(session: Session): Promise<void> {
    let failure: Error | undefined;
    try {
      (session.conn as Deno.TcpConn).setNoDelay(true);
      await pump(session.conn, session, pumpOptions);
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
    if (failure !== undefined) {
      connLog.warning("connection from {peer} failed: {error}", {
        peer: session.peer,
        error: failure.message,
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

  function logRefusal(ip: string, reason: RefusalReason): void {
    const held = refusalThrottle.take();
    if (held === undefined) return;
    const limit = reason === "max-conns" ? options.maxConns : options.maxConnsPerIp;
    log.warning(
      "refused {ip}: {reason} limit reached ({refused} refused so far, {held} refusals not logged)",
      { ip, reason, limit, refused: stats.refusedTotal, held },
    );
  }

  function shutdown(shutdownOptions: ShutdownOptions = {}): Promise<void> {
    const drainTimeout = shutdownOptions.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT;
    if (stopping !== undefined) {
      if (drainTimeout === 0) cutDrain?.();
      return stopping;
    }
    stopping = (async () => {
      for (const listener of binding.listeners) closeQuietly(listener);
      sweep?.stop();
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
    addresses: binding.listeners.map((l) => formatAddr(l.addr)),
    port: binding.port,
    mode: binding.mode,
    ipv6Error: binding.ipv6Error,
    stats,
    shutdown,
  };
}

function closeQuietly(resource: Deno.Conn | Deno.Listener): void {
  try {
    resource.close();
  } catch {
    // Already closed: the peer or the sweep got there first.
  }
}

function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.TimedOut;
}
