/**
 * The counters in the Prometheus text exposition format (version 0.0.4):
 * which metric family each counter belongs to, with which reason label.
 * The HTTP endpoint that serves it is `metrics_server.ts`.
 *
 * @module
 */

import {
  type Counter,
  EXPIRED,
  parseFaultCounter,
  type PortCounts,
  REFUSED,
  type Snapshot,
} from "./stats.ts";
import { UDP_DROPPED } from "./udp.ts";

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
function sampleOf(counter: ExportedCounter): string {
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
  const faults = Object.entries(snapshot).flatMap(([name, count]) => {
    const counter = parseFaultCounter(name);
    return counter === undefined ? [] : [{ ...counter, count: count as number }];
  });
  if (faults.length > 0) {
    lines.push(
      "# HELP echod_faults_applied_total Faults applied (--fault), by port and fault: connections " +
        "given latency, jitter, rate, slice or blackhole; cuts made; connections refused; " +
        "UDP datagrams dropped, duplicated or delayed.",
      "# TYPE echod_faults_applied_total counter",
      ...faults.map((f) =>
        `echod_faults_applied_total{port="${f.port}",fault="${f.fault}"} ${f.count}`
      ),
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
