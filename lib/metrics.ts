/**
 * `--metrics ADDR:PORT`: the counters in the Prometheus text exposition
 * format at `/metrics`, and `/healthz` for liveness probes. Off by default;
 * on loopback unless an address is given.
 *
 * @module
 */

import { RuntimeError } from "./errors.ts";
import type { StatsSnapshot, StatsSource } from "./stats.ts";

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The bound address, e.g. `127.0.0.1:9107`. */
  readonly address: string;
  /** Stops serving. */
  close(): Promise<void>;
}

interface Family {
  name: string;
  type: "counter" | "gauge";
  help: string;
  samples: [labels: string, key: string][];
}

const FAMILIES: Family[] = [
  {
    name: "echod_connections_active",
    type: "gauge",
    help: "TCP connections open now.",
    samples: [["", "active"]],
  },
  {
    name: "echod_connections_accepted_total",
    type: "counter",
    help: "TCP connections accepted from the OS, admitted or not.",
    samples: [["", "accepted"]],
  },
  {
    name: "echod_connections_refused_total",
    type: "counter",
    help: "TCP connections closed at once on arrival, by reason.",
    samples: [
      ['reason="max-conns"', "refusedMaxConns"],
      ['reason="max-conns-per-ip"', "refusedMaxConnsPerIp"],
      ['reason="denied"', "refusedDenied"],
      ['reason="accept-rate"', "refusedAcceptRate"],
      ['reason="proxy-header"', "refusedProxyHeader"],
    ],
  },
  {
    name: "echod_connections_expired_total",
    type: "counter",
    help: "TCP connections closed by echod's limits, by reason.",
    samples: [
      ['reason="idle-timeout"', "idleTimeouts"],
      ['reason="max-lifetime"', "lifetimeEnds"],
      ['reason="tls-handshake"', "tlsHandshakeTimeouts"],
    ],
  },
  {
    name: "echod_accept_errors_total",
    type: "counter",
    help: "Failed accept calls (descriptor exhaustion and the like).",
    samples: [["", "acceptErrors"]],
  },
  {
    name: "echod_accept_aborted_total",
    type: "counter",
    help: "Connections that were reset before they could be accepted.",
    samples: [["", "acceptAborted"]],
  },
  {
    name: "echod_received_bytes_total",
    type: "counter",
    help: "Bytes read from TCP peers.",
    samples: [["", "bytesIn"]],
  },
  {
    name: "echod_sent_bytes_total",
    type: "counter",
    help: "Bytes echoed back to TCP peers.",
    samples: [["", "bytesOut"]],
  },
  {
    name: "echod_udp_datagrams_echoed_total",
    type: "counter",
    help: "UDP datagrams answered.",
    samples: [["", "udpEchoed"]],
  },
  {
    name: "echod_udp_echoed_bytes_total",
    type: "counter",
    help: "Bytes in UDP datagrams answered.",
    samples: [["", "udpBytes"]],
  },
  {
    name: "echod_udp_datagrams_dropped_total",
    type: "counter",
    help: "UDP datagrams not answered, by reason.",
    samples: [
      ['reason="reflector-port"', "udpDroppedReflectorPort"],
      ['reason="denied"', "udpDroppedDenied"],
      ['reason="source-rate"', "udpDroppedSourceRate"],
      ['reason="global-rate"', "udpDroppedGlobalRate"],
    ],
  },
];

/** Renders a snapshot in the Prometheus text exposition format (version 0.0.4). */
export function renderMetrics(snapshot: StatsSnapshot, uptimeSeconds: number): string {
  const lines: string[] = [];
  for (const family of FAMILIES) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const [labels, key] of family.samples) {
      lines.push(`${family.name}${labels ? `{${labels}}` : ""} ${snapshot[key] ?? 0}`);
    }
  }
  lines.push(
    "# HELP echod_uptime_seconds Seconds since echod started.",
    "# TYPE echod_uptime_seconds gauge",
    `echod_uptime_seconds ${uptimeSeconds.toFixed(3)}`,
  );
  return lines.join("\n") + "\n";
}

/** Serves `/metrics` and `/healthz` on `hostname:port`. */
export function serveMetrics(
  hostname: string,
  port: number,
  source: StatsSource,
): MetricsServer {
  const started = performance.now();
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname, port, onListen() {} }, function handle(request) {
      const path = new URL(request.url).pathname;
      if (request.method !== "GET" && request.method !== "HEAD") {
        return new Response("method not allowed\n", {
          status: 405,
          headers: { allow: "GET, HEAD" },
        });
      }
      if (path === "/metrics") {
        const body = renderMetrics(source.snapshot(), (performance.now() - started) / 1_000);
        return new Response(body, {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      }
      if (path === "/healthz") return new Response("ok\n");
      return new Response("not found: try /metrics or /healthz\n", { status: 404 });
    });
  } catch (error) {
    const where = hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
    const reason = error instanceof Deno.errors.AddrInUse
      ? "the port is already in use"
      : (error as Error).message;
    throw new RuntimeError(`cannot serve metrics on ${where}: ${reason}`, { cause: error });
  }
  const addr = server.addr;
  return {
    address: addr.hostname.includes(":")
      ? `[${addr.hostname}]:${addr.port}`
      : `${addr.hostname}:${addr.port}`,
    close: () => server.shutdown(),
  };
}
