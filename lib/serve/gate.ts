/**
 * The gate: decides, as each connection arrives, whether it may stay. In
 * order: who it is (the client a trusted proxy names in its PROXY header,
 * else the peer), `--allow`/`--deny`, `--accept-rate`, then the connection
 * limits. A refused connection is closed at once, counted by reason, and
 * logged at most once every few seconds.
 *
 * @module
 */

import { getLog, LogThrottle } from "../log.ts";
import { closeQuietly, hostPort } from "../net.ts";
import { AccessList, type AccessListOptions, type Cidr } from "./acl.ts";
import { type Admitter, peerKey } from "./admission.ts";
import { ProxyHeaderError, readProxyHeader } from "./proxy_protocol.ts";
import { LOG_INTERVAL } from "./defaults.ts";
import { RateLimiter } from "./rate_limit.ts";
import { REFUSED, type RefusedBy, refusedTotal, type Stats } from "./stats.ts";

/** Who an admitted connection is from, and how it is to be served. */
export interface Arrival {
  /** The address it is counted under (see `peerKey`). */
  ip: string;
  /** The client's port (the peer's, or the one a PROXY header names). */
  port: number;
  /** The proxy's address, `host:port`, when a PROXY header named the client. */
  proxy?: string;
  /** Whether it arrived on a TLS listener. */
  tls: boolean;
  /** Bytes read after a PROXY header: the client's first. */
  early?: Uint8Array;
}

/**
 * The client as logs name it, `ip:port` or `[ip]:port`: made when a line is
 * written, not kept with every connection.
 */
export function peerOf(arrival: Arrival): string {
  return hostPort(arrival.ip, arrival.port);
}

/** What the gate checks against, and where admitted connections go. */
export interface GateOptions {
  /** The connection limits (one thread's, or shared by workers). */
  admission: Admitter;
  /** Counters to advance. */
  stats: Stats;
  /** Called for each admitted connection; it must release the admission when done. */
  admitted: (conn: Deno.Conn, arrival: Arrival) => void;
  /** `--allow`/`--deny`. */
  access?: AccessListOptions;
  /** `--accept-rate`: new connections per second per address; 0 for none. */
  acceptRate?: number;
  /** Proxies whose PROXY header names the real client. */
  trusted?: Cidr[];
  /** `--max-conns`, which connections waiting for a PROXY header count against too. */
  maxConns: number;
  /** Connections admitted and still open, for that count. */
  open: () => number;
}

/** How long a trusted proxy has to send its PROXY header. */
const PROXY_HEADER_TIMEOUT = 10_000;

/** Admits or refuses each arriving connection. */
export class Gate {
  #options: GateOptions;
  #access?: AccessList;
  #rate?: RateLimiter;
  #trusted?: AccessList;
  #awaitingHeader = new Set<Deno.Conn>();
  #throttle = new LogThrottle(LOG_INTERVAL);
  #closed = false;
  #log = getLog();

  /** Creates a gate. */
  constructor(options: GateOptions) {
    this.#options = options;
    this.#access = options.access && new AccessList(options.access);
    this.#rate = options.acceptRate ? new RateLimiter(options.acceptRate) : undefined;
    this.#trusted = options.trusted && new AccessList({ allow: options.trusted });
  }

  /** Takes a connection just accepted on a plain (`tls` false) or TLS listener. */
  arrive(conn: Deno.Conn, tls: boolean): void {
    this.#options.stats.count.accepted++;
    const remote = conn.remoteAddr as Deno.NetAddr;
    const ip = peerKey(remote.hostname);
    if (this.#trusted?.matches(ip)) {
      this.#fromProxy(conn, ip, tls);
      return;
    }
    this.#admit(conn, { ip, port: remote.port, tls });
  }

  /** Closes the connections still waiting for a PROXY header, and admits no more. */
  close(): void {
    this.#closed = true;
    for (const conn of this.#awaitingHeader) closeQuietly(conn);
  }

  /**
   * A connection from a trusted proxy: the real client is in its PROXY
   * header (sent in the clear, before any TLS). Waiting for it takes a place
   * under --max-conns, so a flood of silent proxy connections is bounded too.
   */
  async #fromProxy(conn: Deno.Conn, proxyIp: string, tls: boolean): Promise<void> {
    const { maxConns, open } = this.#options;
    if (maxConns > 0 && this.#awaitingHeader.size + open() >= maxConns) {
      return this.#refuse(conn, proxyIp, "max-conns");
    }
    this.#awaitingHeader.add(conn);
    try {
      const header = await readProxyHeader(conn, PROXY_HEADER_TIMEOUT);
      if (this.#closed) throw new ProxyHeaderError("shutting down");
      const source = header.source;
      const ip = source ? peerKey(source.hostname) : proxyIp;
      const remote = conn.remoteAddr as Deno.NetAddr;
      this.#admit(conn, {
        ip,
        port: source?.port ?? remote.port,
        proxy: source ? hostPort(proxyIp, remote.port) : undefined,
        tls,
        early: header.rest,
      });
    } catch (error) {
      this.#refuse(conn, proxyIp, "proxy-header", (error as Error).message);
    } finally {
      this.#awaitingHeader.delete(conn);
    }
  }

  #admit(conn: Deno.Conn, arrival: Arrival): void {
    const { ip } = arrival;
    if (this.#access !== undefined && !this.#access.permits(ip)) {
      return this.#refuse(conn, ip, "denied");
    }
    if (this.#rate !== undefined && !this.#rate.take(ip)) {
      return this.#refuse(conn, ip, "accept-rate");
    }
    const refusal = this.#options.admission.admit(ip);
    if (refusal !== undefined) return this.#refuse(conn, ip, refusal);
    this.#options.admitted(conn, arrival);
  }

  #refuse(conn: Deno.Conn, ip: string, reason: RefusedBy, detail?: string): void {
    const { count } = this.#options.stats;
    count[REFUSED[reason]]++;
    closeQuietly(conn);
    const held = this.#throttle.take();
    if (held === undefined) return;
    this.#log.warning(
      "refused {ip}: {reason}{detail} ({refused} refused so far, {held} refusals not logged)",
      {
        ip,
        reason,
        detail: detail === undefined ? "" : ` (${detail})`,
        refused: refusedTotal(count),
        held,
      },
    );
  }
}
