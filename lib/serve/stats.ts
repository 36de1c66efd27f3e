/**
 * The counters, typed once: every place that counts, logs or exports one
 * names it by a key of {@linkcode Counters}, so a typo or a counter without
 * a metric fails the type check. Also the periodic stats line.
 *
 * @module
 */

import type { RefusalReason } from "./admission.ts";
import type { ExpiryReason } from "./sweep.ts";

/** Every counter echod keeps; the names are also the JSON log fields. */
export interface Counters {
  /** TCP connections open now. */
  active: number;
  /** TCP connections accepted from the OS, admitted or not. */
  accepted: number;
  /** Failed accept calls (descriptor exhaustion and the like). */
  acceptErrors: number;
  /** Connections that died (reset) before they could be accepted. */
  acceptAborted: number;
  /** Bytes read from TCP peers. */
  bytesIn: number;
  /** Bytes echoed back to TCP peers. */
  bytesOut: number;
  /**
   * Bytes read from TCP peers but not echoed because the drain closed their
   * connection (at `--drain-timeout`, or a second stop signal): with them,
   * `bytesIn` = `bytesOut` + `drainCut` after a stop, unless a reset or a
   * limit also ended a connection in mid-echo.
   */
  drainCut: number;
  /** Refused at the door: `--max-conns`. */
  refusedMaxConns: number;
  /** Refused at the door: `--max-conns-per-ip`. */
  refusedMaxConnsPerIp: number;
  /** Refused at the door: `--allow`/`--deny`. */
  refusedDenied: number;
  /** Refused at the door: `--accept-rate`. */
  refusedAcceptRate: number;
  /** Refused at the door: no valid PROXY header from a trusted proxy. */
  refusedProxyHeader: number;
  /** Closed by `--idle-timeout`. */
  idleTimeouts: number;
  /** Closed by `--max-lifetime`. */
  lifetimeEnds: number;
  /** Closed by `--tls-handshake-timeout`. */
  tlsHandshakeTimeouts: number;
  /** UDP datagrams answered. */
  udpEchoed: number;
  /** Bytes in UDP datagrams answered. */
  udpBytes: number;
  /** UDP datagrams not answered: a reflector's port, or echod's own. */
  udpDroppedReflectorPort: number;
  /** UDP datagrams not answered: a loop with another echo service. */
  udpDroppedLoop: number;
  /** UDP datagrams not answered: `--allow`/`--deny`. */
  udpDroppedDenied: number;
  /** UDP datagrams not answered: `--udp-rate`. */
  udpDroppedSourceRate: number;
  /** UDP datagrams not answered: `--udp-max-rate`. */
  udpDroppedGlobalRate: number;
}

/** A counter's name. */
export type Counter = keyof Counters;

/**
 * The name under which a snapshot carries `echod_faults_applied_total` for
 * one port and fault: `fault:7001:latency` (see {@linkcode faultCounter}).
 */
export type FaultCounter = `fault:${number}:${string}`;

/** The counters a part of echod reports (TCP, UDP, or all of them summed). */
export type Snapshot = Partial<Counters> & { [counter: FaultCounter]: number };

/** The snapshot key counting fault `key` applied on `port`. */
export function faultCounter(port: number, key: string): FaultCounter {
  return `fault:${port}:${key}`;
}

/** The port and fault a snapshot key counts, or `undefined` when it is no fault counter. */
export function parseFaultCounter(name: string): { port: number; fault: string } | undefined {
  const match = /^fault:(\d+):(.+)$/.exec(name);
  return match === null ? undefined : { port: Number(match[1]), fault: match[2] };
}

/** Connections of one TCP port, when several are served. */
export interface PortCounts {
  /** The port. */
  port: number;
  /** Connections accepted on it, admitted or not. */
  accepted: number;
  /** Connections open on it now. */
  active: number;
}

/** Anything that can report counters: one server, UDP, or several workers summed. */
export interface StatsSource {
  /** The counters now. */
  snapshot(): Snapshot;
  /** Per-port connection counts, when more than one port is served. */
  ports?(): PortCounts[];
}

/** Every reason a connection can be refused at the door. */
export type RefusedBy = RefusalReason | "denied" | "accept-rate" | "proxy-header";

/** The counter of each refusal reason (also its `reason` label in /metrics). */
export const REFUSED: Readonly<Record<RefusedBy, Counter>> = {
  "max-conns": "refusedMaxConns",
  "max-conns-per-ip": "refusedMaxConnsPerIp",
  denied: "refusedDenied",
  "accept-rate": "refusedAcceptRate",
  "proxy-header": "refusedProxyHeader",
};

/** The counter of each expiry reason (also its `reason` label in /metrics). */
export const EXPIRED: Readonly<Record<ExpiryReason, Counter>> = {
  "idle-timeout": "idleTimeouts",
  "max-lifetime": "lifetimeEnds",
  "tls-handshake": "tlsHandshakeTimeouts",
};

/** All connections refused at the door, in a snapshot. */
export function refusedTotal(snapshot: Partial<Counters>): number {
  let total = 0;
  for (const counter of Object.values(REFUSED)) total += snapshot[counter] ?? 0;
  return total;
}

/** Adds snapshots counter by counter (workers' reports). */
export function sumSnapshots(snapshots: Snapshot[]): Snapshot {
  const sum: Snapshot = {};
  for (const snapshot of snapshots) {
    const into = sum as Record<string, number>;
    for (const [key, value] of Object.entries(snapshot) as [string, number][]) {
      into[key] = (into[key] ?? 0) + value;
    }
  }
  return sum;
}

/** The TCP server's counters, advanced in place. */
export class Stats implements StatsSource {
  /** The counters; `bytesIn`/`bytesOut` are advanced by the echo loops directly. */
  readonly count: Counters = {
    active: 0,
    accepted: 0,
    acceptErrors: 0,
    acceptAborted: 0,
    bytesIn: 0,
    bytesOut: 0,
    drainCut: 0,
    refusedMaxConns: 0,
    refusedMaxConnsPerIp: 0,
    refusedDenied: 0,
    refusedAcceptRate: 0,
    refusedProxyHeader: 0,
    idleTimeouts: 0,
    lifetimeEnds: 0,
    tlsHandshakeTimeouts: 0,
    udpEchoed: 0,
    udpBytes: 0,
    udpDroppedReflectorPort: 0,
    udpDroppedLoop: 0,
    udpDroppedDenied: 0,
    udpDroppedSourceRate: 0,
    udpDroppedGlobalRate: 0,
  };

  /** Per-port counts, kept only when more than one port is served. */
  readonly byPort: Map<number, PortCounts> = new Map();

  /** Faults applied, by {@linkcode faultCounter} name. */
  readonly faults: Map<FaultCounter, number> = new Map();

  /** Counts fault `key` applied once on `port`. */
  countFault(port: number, key: string): void {
    const name = faultCounter(port, key);
    this.faults.set(name, (this.faults.get(name) ?? 0) + 1);
  }

  /** A copy of the counters. */
  snapshot(): Snapshot {
    const snapshot: Snapshot = { ...this.count };
    for (const [name, count] of this.faults) snapshot[name] = count;
    return snapshot;
  }

  /** Copies of the per-port counts (empty with one port). */
  ports(): PortCounts[] {
    return [...this.byPort.values()].map((counts) => ({ ...counts }));
  }
}
