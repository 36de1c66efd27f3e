/**
 * `--metrics ADDR:PORT`: the HTTP endpoint serving `/metrics` (the
 * exposition of `metrics.ts`), `/healthz` for liveness probes and `/readyz`
 * for readiness probes (503 from the first stop signal on), and, when
 * enabled, `POST /quitquitquit` to stop echod. Off by default; on loopback
 * unless an address is given.
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
import { parseRequest, readRequestHead, type Request } from "./http_request.ts";
import { getLog, LogThrottle } from "../log.ts";
import { closeQuietly, formatAddr, hostPort, writeAll } from "../net.ts";
import { renderMetrics } from "./metrics.ts";
import type { StatsSource } from "./stats.ts";

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The bound address, e.g. `127.0.0.1:9107`. */
  readonly address: string;
  /** Stops serving. */
  close(): Promise<void>;
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
   * Called on `POST /quitquitquit` (answered 200 `stopping`); without it
   * that path is not served.
   * @default {undefined}
   */
  quit?: () => void;
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
      const request = typeof head === "number" ? undefined : parseRequest(head);
      const response = typeof head === "number"
        ? plain(head, "request head too large\n")
        : respond(request);
      await writeAll(conn, new TextEncoder().encode(response));
      // A head too large, or a POST, may leave bytes unread (see linger).
      if (typeof head === "number" || request?.method === "POST") await linger(conn);
    } catch {
      // The client went away, or the deadline closed it: nothing to answer.
    } finally {
      clearTimeout(timer);
    }
  }

  function respond(request: Request | undefined): string {
    if (request === undefined) return plain(400, "bad request\n");
    const { method, target } = request;
    const path = target.split("?")[0];
    if (path === "/quitquitquit" && options.quit !== undefined) {
      if (method !== "POST") return plain(405, "method not allowed\n", "allow: POST\r\n");
      options.quit();
      return plain(200, "stopping\n");
    }
    if (method !== "GET" && method !== "HEAD") {
      return plain(405, "method not allowed\n", "allow: GET, HEAD\r\n");
    }
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
