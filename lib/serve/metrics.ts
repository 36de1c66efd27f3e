/**
 * `--metrics ADDR:PORT`: the counters in the Prometheus text exposition
 * format at `/metrics`, `/healthz` for liveness probes and `/readyz` for
 * readiness probes (503 from the first stop signal on). Off by default; on
 * loopback unless an address is given.
 *
 * @module
 */

import { acceptLoop } from "./accept.ts";
import {
  DEFAULT_METRICS_MAX_CONNS,
  DEFAULT_METRICS_REQUEST_TIMEOUT,
  LOG_INTERVAL,
} from "./defaults.ts";
import { RuntimeError } from "../errors.ts";
import { parseRequest, readRequestHead } from "./http_request.ts";
import { getLog, LogThrottle } from "../log.ts";
import { closeQuietly, formatAddr, hostPort, writeAll } from "../net.ts";
import {
  type Counter,
  EXPIRED,
  type PortCounts,
  REFUSED,
  type Snapshot,
  type StatsSource,
} from "./stats.ts";
import { UDP_DROPPED } from "./udp.ts";

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The bound address, e.g. `127.0.0.1:9107`. */
  readonly address: string;
  /** Stops serving. */
  close(): Promise<void>;
}

/** A metric family of the exposition. */
interface Family {
  type: "counter" | "gauge";
  help: string;
}

const FAMILIES = {
  echod_connections_active: { type: "gauge", help: "TCP connections open now." },
  echod_connections_accepted_total: {
    type: "counter",
    help: "TCP connections accepted from the OS, admitted or not.",
  },
  echod_connections_refused_total: {
    type: "counter",
    help: "TCP connections closed at once on arrival, by reason.",
  },
  echod_connections_expired_total: {
    type: "counter",
    help: "TCP connections closed by echod's limits, by reason.",
  },
  echod_accept_errors_total: {
    type: "counter",
    help: "Failed accept calls (descriptor exhaustion and the like).",
  },
  echod_accept_aborted_total: {
    type: "counter",
    help: "Connections that were reset before they could be accepted.",
  },
  echod_received_bytes_total: { type: "counter", help: "Bytes read from TCP peers." },
  echod_sent_bytes_total: { type: "counter", help: "Bytes echoed back to TCP peers." },
  echod_udp_datagrams_echoed_total: { type: "counter", help: "UDP datagrams answered." },
  echod_udp_echoed_bytes_total: { type: "counter", help: "Bytes in UDP datagrams answered." },
  echod_udp_datagrams_dropped_total: {
    type: "counter",
    help: "UDP datagrams not answered, by reason.",
  },
} satisfies Record<string, Family>;

type FamilyName = keyof typeof FAMILIES;

/**
 * Counters that are not exported: the bytes cut by the drain are counted as
 * the drain closes its last connections, right before the endpoint closes,
 * so no scrape could see them; the stop line reports them.
 */
export const NOT_EXPORTED = ["drainCut"] as const satisfies readonly Counter[];

/** A counter that /metrics exports. */
export type ExportedCounter = Exclude<Counter, typeof NOT_EXPORTED[number]>;

/**
 * The family each counter is exported in. A `Record` over every exported
 * counter, so one without a metric, or a misspelt one, fails the type check.
 */
const EXPORTED: Readonly<Record<ExportedCounter, FamilyName>> = {
  active: "echod_connections_active",
  accepted: "echod_connections_accepted_total",
  refusedMaxConns: "echod_connections_refused_total",
  refusedMaxConnsPerIp: "echod_connections_refused_total",
  refusedDenied: "echod_connections_refused_total",
  refusedAcceptRate: "echod_connections_refused_total",
  refusedProxyHeader: "echod_connections_refused_total",
  idleTimeouts: "echod_connections_expired_total",
  lifetimeEnds: "echod_connections_expired_total",
  tlsHandshakeTimeouts: "echod_connections_expired_total",
  acceptErrors: "echod_accept_errors_total",
  acceptAborted: "echod_accept_aborted_total",
  bytesIn: "echod_received_bytes_total",
  bytesOut: "echod_sent_bytes_total",
  udpEchoed: "echod_udp_datagrams_echoed_total",
  udpBytes: "echod_udp_echoed_bytes_total",
  udpDroppedReflectorPort: "echod_udp_datagrams_dropped_total",
  udpDroppedLoop: "echod_udp_datagrams_dropped_total",
  udpDroppedDenied: "echod_udp_datagrams_dropped_total",
  udpDroppedSourceRate: "echod_udp_datagrams_dropped_total",
  udpDroppedGlobalRate: "echod_udp_datagrams_dropped_total",
};

/** The `reason` label of a counter, from the very tables the server counts with. */
const REASON: ReadonlyMap<Counter, string> = new Map(
  [REFUSED, EXPIRED, UDP_DROPPED].flatMap((table) =>
    Object.entries(table).map(([reason, counter]) => [counter as Counter, reason])
  ),
);

/** The sample a counter is exported as, e.g. `echod_connections_refused_total{reason="max-conns"}`. */
export function sampleOf(counter: ExportedCounter): string {
  const reason = REASON.get(counter);
  return `${EXPORTED[counter]}${reason === undefined ? "" : `{reason="${reason}"}`}`;
}

/** What {@linkcode renderMetrics} shows besides the counters. */
export interface RenderOptions {
  /**
   * Counts by port, when there are several ports.
   * @default {[]}
   */
  ports?: PortCounts[];
  /**
   * Whether echod is draining (exported as `echod_draining`).
   * @default {false}
   */
  draining?: boolean;
}

/** Renders a snapshot in the Prometheus text exposition format (version 0.0.4). */
export function renderMetrics(
  snapshot: Snapshot,
  uptimeSeconds: number,
  options: RenderOptions = {},
): string {
  const ports = options.ports ?? [];
  const lines: string[] = [];
  for (const [name, family] of Object.entries(FAMILIES)) {
    lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`);
    for (
      const [counter, inFamily] of Object.entries(EXPORTED) as [ExportedCounter, FamilyName][]
    ) {
      if (inFamily !== name) continue;
      lines.push(`${sampleOf(counter)} ${snapshot[counter] ?? 0}`);
    }
  }
  if (ports.length > 0) {
    lines.push(
      "# HELP echod_port_connections_accepted_total TCP connections accepted, by port.",
      "# TYPE echod_port_connections_accepted_total counter",
      ...ports.map((p) => `echod_port_connections_accepted_total{port="${p.port}"} ${p.accepted}`),
      "# HELP echod_port_connections_active TCP connections open now, by port.",
      "# TYPE echod_port_connections_active gauge",
      ...ports.map((p) => `echod_port_connections_active{port="${p.port}"} ${p.active}`),
    );
  }
  lines.push(
    "# HELP echod_uptime_seconds Seconds since echod started.",
    "# TYPE echod_uptime_seconds gauge",
    `echod_uptime_seconds ${uptimeSeconds.toFixed(3)}`,
    "# HELP echod_draining 1 from the first stop signal on (/readyz answers 503), else 0.",
    "# TYPE echod_draining gauge",
    `echod_draining ${options.draining ? 1 : 0}`,
  );
  return lines.join("\n") + "\n";
}

/** How the metrics endpoint runs; every option has a default. */
export interface MetricsOptions {
  /**
   * Whether echod is draining: `/readyz` answers 503 `draining` and
   * `echod_draining` is 1 while this says so.
   * @default {never}
   */
  draining?: () => boolean;
  /**
   * Milliseconds a client has to send its request and take the answer.
   * @default {5000}
   */
  requestTimeout?: number;
  /**
   * Requests served at once; past it, the oldest is closed for the newcomer.
   * @default {16}
   */
  maxConns?: number;
}

/** Longest request head read (request line and headers). */
const MAX_HEAD = 8 * 1024;

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  431: "Request Header Fields Too Large",
  503: "Service Unavailable",
};

/**
 * Serves `/metrics`, `/healthz` and `/readyz` on `hostname:port`: a small HTTP/1.1
 * server of its own (one request per connection) rather than `Deno.serve`,
 * whose accept loop ends the process when descriptors run out. Accepting
 * backs off and resumes like the echo listeners; a client gets
 * `requestTimeout` for its whole exchange, and at most `maxConns` are open
 * at once (a newcomer displaces the oldest).
 */
export function serveMetrics(
  hostname: string,
  port: number,
  source: StatsSource,
  options: MetricsOptions = {},
): MetricsServer {
  const started = performance.now();
  const requestTimeout = options.requestTimeout ?? DEFAULT_METRICS_REQUEST_TIMEOUT;
  const maxConns = options.maxConns ?? DEFAULT_METRICS_MAX_CONNS;
  const draining = options.draining ?? (() => false);
  const log = getLog("metrics");
  const throttle = new LogThrottle(LOG_INTERVAL);
  const open = new Set<Deno.Conn>();
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname, port, transport: "tcp" });
  } catch (error) {
    const reason = error instanceof Deno.errors.AddrInUse
      ? "the port is already in use"
      : (error as Error).message;
    throw new RuntimeError(`cannot serve metrics on ${hostPort(hostname, port)}: ${reason}`, {
      cause: error,
    });
  }
  const done = acceptLoop(listener, function accepted(conn) {
    if (open.size >= maxConns) {
      // Full: the connection that has waited longest gives way, so silent
      // clients cannot keep a real scrape out.
      closeQuietly(open.values().next().value!);
    }
    open.add(conn);
    answer(conn).finally(() => {
      open.delete(conn);
      closeQuietly(conn);
    });
  }, {
    onError(error, retryInMs) {
      if (retryInMs === 0) return;
      const held = throttle.take();
      if (held === undefined) return;
      log.error(
        "metrics: accept failed: {error}; retrying in {retryInMs} ms ({held} more failures not logged)",
        { error: error.message, retryInMs, held },
      );
    },
  });

  async function answer(conn: Deno.Conn): Promise<void> {
    // The whole exchange has one deadline: slow or silent clients are cut off.
    const timer = setTimeout(() => closeQuietly(conn), requestTimeout);
    try {
      const head = await readRequestHead(conn, MAX_HEAD);
      const response = typeof head === "number"
        ? plain(head, "request head too large\n")
        : respond(head);
      await writeAll(conn, new TextEncoder().encode(response));
      if (typeof head === "number") await linger(conn);
    } catch {
      // The client went away, or the deadline closed it: nothing to answer.
    } finally {
      clearTimeout(timer);
    }
  }

  function respond(head: string): string {
    const request = parseRequest(head);
    if (request === undefined) return plain(400, "bad request\n");
    const { method, target } = request;
    if (method !== "GET" && method !== "HEAD") {
      return plain(405, "method not allowed\n", "allow: GET, HEAD\r\n");
    }
    const path = target.split("?")[0];
    let status = 404;
    let body = "not found: try /metrics, /healthz or /readyz\n";
    let type = "text/plain; charset=utf-8";
    if (path === "/metrics") {
      status = 200;
      body = renderMetrics(source.snapshot(), (performance.now() - started) / 1_000, {
        ports: source.ports?.(),
        draining: draining(),
      });
      type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (path === "/healthz") {
      status = 200;
      body = "ok\n";
    } else if (path === "/readyz") {
      [status, body] = draining() ? [503, "draining\n"] : [200, "ready\n"];
    }
    return plain(status, method === "HEAD" ? "" : body, "", type, body.length);
  }

  return {
    address: formatAddr(listener.addr),
    async close() {
      closeQuietly(listener);
      for (const conn of open) closeQuietly(conn);
      await done;
    },
  };
}

/** What a client may still send after an answer to a head too large (see {@linkcode linger}). */
const LINGER_BYTES = 256 * 1024;

/**
 * After answering a request that was not read to its end: stop writing and
 * take what the client still sends (up to {@linkcode LINGER_BYTES}, within
 * the deadline) before closing. Closing with unread data resets the
 * connection, and Windows then drops the answer before the client reads it.
 */
async function linger(conn: Deno.Conn): Promise<void> {
  await conn.closeWrite();
  const scratch = new Uint8Array(16 * 1024);
  for (let taken = 0; taken < LINGER_BYTES;) {
    const n = await conn.read(scratch);
    if (n === null) return;
    taken += n;
  }
}

function plain(
  status: number,
  body: string,
  extra = "",
  type = "text/plain; charset=utf-8",
  length = new TextEncoder().encode(body).length,
): string {
  return `HTTP/1.1 ${status} ${REASONS[status]}\r\ncontent-type: ${type}\r\n` +
    `content-length: ${length}\r\nconnection: close\r\n${extra}\r\n${body}`;
}
