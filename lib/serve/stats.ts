/**
 * Counters for the whole server and the periodic stats line.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { RefusalReason } from "./admission.ts";
import type { Tally } from "./pump.ts";
import type { ExpiryReason } from "./sweep.ts";

/** The counters as plain numbers, e.g. `{ active: 3, accepted: 120, … }`. */
export type StatsSnapshot = Record<string, number>;

/** Anything that can report counters: one server, or several workers summed. */
export interface StatsSource {
  /** The counters now. */
  snapshot(): StatsSnapshot;
}

/** Adds snapshots key by key. */
export function sumSnapshots(snapshots: StatsSnapshot[]): StatsSnapshot {
  const sum: StatsSnapshot = {};
  for (const snapshot of snapshots) {
    for (const [key, value] of Object.entries(snapshot)) sum[key] = (sum[key] ?? 0) + value;
  }
  return sum;
}

/** Every reason a connection can be refused at the door. */
export type RefusedBy = RefusalReason | "denied" | "accept-rate" | "proxy-header";

/** Counters for the life of a server. */
export class Stats implements Tally, StatsSource {
  /** Connections accepted from the OS, admitted or not. */
  accepted = 0;
  /** Connections open now. */
  active = 0;
  /** Bytes read from peers. */
  bytesIn = 0;
  /** Bytes written back to peers. */
  bytesOut = 0;
  /** Failed accept calls (descriptor exhaustion and the like). */
  acceptErrors = 0;
  /** Connections that died (reset) before they could be accepted. */
  acceptAborted = 0;
  /** Connections refused at admission, by reason. */
  refused: Record<RefusedBy, number> = {
    "max-conns": 0,
    "max-conns-per-ip": 0,
    denied: 0,
    "accept-rate": 0,
    "proxy-header": 0,
  };
  /** Connections ended by echod's limits, by reason. */
  expired: Record<ExpiryReason, number> = {
    "idle-timeout": 0,
    "max-lifetime": 0,
    "tls-handshake": 0,
  };

  /** All connections refused at admission. */
  get refusedTotal(): number {
    return Object.values(this.refused).reduce((a, b) => a + b, 0);
  }

  /** A plain-object copy, flat, for a log record's properties. */
  snapshot(): StatsSnapshot {
    return {
      active: this.active,
      accepted: this.accepted,
      refused: this.refusedTotal,
      refusedMaxConns: this.refused["max-conns"],
      refusedMaxConnsPerIp: this.refused["max-conns-per-ip"],
      refusedDenied: this.refused.denied,
      refusedAcceptRate: this.refused["accept-rate"],
      refusedProxyHeader: this.refused["proxy-header"],
      idleTimeouts: this.expired["idle-timeout"],
      lifetimeEnds: this.expired["max-lifetime"],
      tlsHandshakeTimeouts: this.expired["tls-handshake"],
      acceptErrors: this.acceptErrors,
      acceptAborted: this.acceptAborted,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
    };
  }
}

/** Default period of the stats line, in milliseconds. */
export const DEFAULT_STATS_INTERVAL = 60_000;

/** A running stats reporter. */
export interface StatsReporter {
  /** Stops reporting. */
  stop(): void;
}

/**
 * Logs `stats` at info level every `intervalMs`, with byte and accept rates
 * over the last interval. Returns `undefined` when `intervalMs` is 0.
 */
export function startStatsReporter(
  stats: StatsSource,
  intervalMs: number,
  log: Logger,
): StatsReporter | undefined {
  if (intervalMs <= 0) return undefined;
  let lastAt = performance.now();
  let last = stats.snapshot();
  const id = setInterval(function report() {
    const nowAt = performance.now();
    const now = stats.snapshot();
    const seconds = (nowAt - lastAt) / 1_000;
    log.info(
      "stats: {active} active, {accepted} accepted, {refused} refused, " +
        "{bytesIn} bytes in, {bytesOut} bytes out, " +
        "{acceptRate} conn/s, {inRate} B/s in, {outRate} B/s out",
      {
        ...now,
        acceptRate: round((now.accepted - last.accepted) / seconds),
        inRate: round((now.bytesIn - last.bytesIn) / seconds),
        outRate: round((now.bytesOut - last.bytesOut) / seconds),
      },
    );
    last = now;
    lastAt = nowAt;
  }, intervalMs);
  return {
    stop() {
      clearInterval(id);
    },
  };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
