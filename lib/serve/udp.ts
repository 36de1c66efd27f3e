/**
 * UDP echo (RFC 862 defines it too), off unless `--udp` is given, because
 * an open UDP echo is a classic reflection and "ping-pong" amplifier. The
 * guards: datagrams from a port below 1024, from a well-known reflector
 * above it, or from echod's own port number are dropped, and so is a source
 * that keeps sending back what it was just sent (a loop); each source
 * address has a token bucket (`--udp-rate`) and all sources together
 * another (`--udp-max-rate`); `--allow`/`--deny` apply. A reply is the received datagram itself, so it
 * is never larger than what came in. Drops are counted by reason and logged
 * at a limited rate.
 *
 * @module
 */

import type { AccessList } from "./acl.ts";
import { peerKey } from "./admission.ts";
import { DEFAULT_UDP_MAX_RATE, DEFAULT_UDP_RATE, LOG_INTERVAL } from "./defaults.ts";
import { bindPorts, bindSockets, explain } from "./listen.ts";
import { closeQuietly, formatAddr, isClosed } from "../net.ts";
import { fnv1a, FNV_OFFSET } from "../fnv.ts";
import { getLog, LogThrottle } from "../log.ts";
import { RateLimiter } from "./rate_limit.ts";
import {
  type Counter,
  type FaultCounter,
  faultCounter,
  type Snapshot,
  type StatsSource,
} from "./stats.ts";
import { actsOnUdp, type FaultProfile, type FaultRule, profileFor } from "./fault_spec.ts";

/**
 * Source ports above 1023 of services that answer a datagram with another:
 * echoing to them would start a loop or join an amplification attack. Every
 * port below 1024 counts too: services sit there, clients do not (inetd's
 * rule for its own echo).
 */
export const REFLECTOR_PORTS: ReadonlySet<number> = new Set([
  1900, // SSDP
  3702, // WS-Discovery
  5353, // mDNS
  11211, // memcached
]);

/** Whether a datagram from `port` could come from a service that answers datagrams. */
export function isReflectorPort(port: number): boolean {
  return port < 1024 || REFLECTOR_PORTS.has(port);
}

/**
 * A source that sends back, within {@linkcode LOOP_WINDOW} of our echo, the
 * very datagram we echoed to it this many times in a row is taken for
 * another echo service (a loop started by a spoofed datagram), and is not
 * answered again until it sends something else.
 */
export const LOOP_REPEATS = 3;

/** Milliseconds within which a datagram that repeats our echo counts toward a loop. */
export const LOOP_WINDOW = 1_000;

/** Why a datagram got no answer. */
export type DropReason = "reflector-port" | "loop" | "denied" | "source-rate" | "global-rate";

/** The counter of each drop reason (also its `reason` label in /metrics). */
export const UDP_DROPPED: Readonly<Record<DropReason, Counter>> = {
  "reflector-port": "udpDroppedReflectorPort",
  loop: "udpDroppedLoop",
  denied: "udpDroppedDenied",
  "source-rate": "udpDroppedSourceRate",
  "global-rate": "udpDroppedGlobalRate",
};

/** Where and how to serve UDP echo. */
export interface UdpOptions {
  /**
   * Addresses to bind; empty means every IPv6 and IPv4 address.
   * @default {[]}
   */
  hosts?: string[];
  /** The UDP ports (the TCP ports' numbers, usually). */
  ports: number[];
  /**
   * Datagrams per second answered for one source address (burst: one second's worth).
   * @default {100}
   */
  rate?: number;
  /**
   * Datagrams per second answered in all.
   * @default {10000}
   */
  maxRate?: number;
  /**
   * Who may be answered.
   * @default {everyone}
   */
  access?: AccessList;
  /**
   * Fault profiles (`--fault`); their `drop`, `duplicate` and `delay` act here.
   * @default {[]}
   */
  faults?: FaultRule[];
}

/** A running UDP echo service. */
export interface UdpServer {
  /** Bound addresses. */
  readonly addresses: string[];
  /** Counters: datagrams echoed and dropped by reason. */
  readonly stats: StatsSource;
  /** Closes the sockets. */
  close(): void;
}

/** Binds the UDP sockets (dual stack like TCP) and starts echoing. */
export function serveUdp(options: UdpOptions): UdpServer {
  const sockets = bindPorts(
    options.ports,
    (port) => bindSockets(options.hosts ?? [], port, openUdp),
  )
    .flatMap((binding) => binding.listeners);
  const own = new Set(options.ports);
  const perSource = new RateLimiter(options.rate ?? DEFAULT_UDP_RATE, undefined, {
    maxKeys: MAX_SOURCES,
  });
  const loops = new LoopGuard();
  const overall = new RateLimiter(options.maxRate ?? DEFAULT_UDP_MAX_RATE);
  // Only what happened; the TCP server's snapshot has every counter at 0.
  const count: Snapshot = {};
  const add = (counter: Counter | FaultCounter, by: number) =>
    count[counter] = (count[counter] ?? 0) + by;
  const log = getLog("udp");
  const throttle = new LogThrottle(LOG_INTERVAL);
  const faults = (options.faults ?? []).filter((rule) => actsOnUdp(rule.profile));
  // Answers held back by `delay`, bounded: past the bound a datagram is dropped (as `drop`).
  const delayed = new Set<ReturnType<typeof setTimeout>>();
  for (const port of options.ports) {
    const profile = profileFor(faults, port);
    if (profile === undefined) continue;
    for (const key of ["drop", "duplicate", "delay"] as const) {
      if (profile[key] > 0) count[faultCounter(port, key)] = 0;
    }
  }

  async function answer(
    socket: Deno.DatagramConn,
    data: Uint8Array,
    to: Deno.NetAddr,
    copies = 1,
  ): Promise<void> {
    try {
      for (let i = 0; i < copies; i++) await socket.send(data, to);
      add("udpEchoed", 1);
      add("udpBytes", data.length);
    } catch {
      // Unreachable peer: nothing to do for a datagram service.
    }
  }

  /** Answers as the port's fault profile says: maybe not, maybe twice, maybe later. */
  function answerWithFault(
    socket: Deno.DatagramConn,
    data: Uint8Array,
    to: Deno.NetAddr,
    profile: FaultProfile,
  ): Promise<void> | undefined {
    const port = (socket.addr as Deno.NetAddr).port;
    const fault = (key: string): undefined => void add(faultCounter(port, key), 1);
    if (profile.drop > 0 && Math.random() < profile.drop) return fault("drop");
    const copies = profile.duplicate > 0 && Math.random() < profile.duplicate ? 2 : 1;
    if (copies === 2) fault("duplicate");
    if (profile.delay === 0) return answer(socket, data, to, copies);
    if (delayed.size >= MAX_DELAYED) return fault("drop");
    fault("delay");
    const held = data.slice();
    const timer = setTimeout(() => {
      delayed.delete(timer);
      answer(socket, held, to, copies);
    }, profile.delay);
    delayed.add(timer);
  }

  function drop(reason: DropReason, from: Deno.NetAddr): void {
    add(UDP_DROPPED[reason], 1);
    const held = throttle.take();
    if (held === undefined) return;
    log.warning("dropped a datagram from {peer}: {reason} ({held} more drops not logged)", {
      peer: formatAddr(from),
      reason,
      held,
    });
  }

  async function echo(socket: Deno.DatagramConn): Promise<void> {
    const buf = new Uint8Array(65_536);
    const profile = profileFor(faults, (socket.addr as Deno.NetAddr).port);
    for (;;) {
      let data: Uint8Array;
      let from: Deno.NetAddr;
      try {
        const [received, addr] = await socket.receive(buf);
        data = received;
        from = addr as Deno.NetAddr;
      } catch (error) {
        if (isClosed(error)) return;
        continue; // e.g. an ICMP error for an earlier reply
      }
      const ip = peerKey(from.hostname);
      // A datagram from our own port is most likely another echo server's.
      if (isReflectorPort(from.port) || own.has(from.port)) drop("reflector-port", from);
      else if (loops.repeats(ip, from.port, data)) drop("loop", from);
      else if (options.access !== undefined && !options.access.permits(ip)) drop("denied", from);
      else if (!perSource.take(ip)) drop("source-rate", from);
      else if (!overall.take("*")) drop("global-rate", from);
      else if (profile !== undefined) await answerWithFault(socket, data, from, profile);
      else await answer(socket, data, from);
    }
  }

  for (const socket of sockets) echo(socket);
  return {
    addresses: sockets.map((s) => formatAddr(s.addr)),
    stats: {
      snapshot(): Snapshot {
        return { ...count };
      },
    },
    close() {
      for (const socket of sockets) closeQuietly(socket);
      for (const timer of delayed) clearTimeout(timer);
      delayed.clear();
    },
  };
}

/** Answers `delay` may hold at once. */
const MAX_DELAYED = 4096;

/** Sources whose rate is tracked at once; past it, a new source waits (a many-source flood). */
const MAX_SOURCES = 100_000;

/**
 * Remembers, per source address and port, a fingerprint of the last
 * datagram echoed to it, to notice the same datagram coming straight back
 * again and again: the signature of two echo services bouncing one packet.
 */
class LoopGuard {
  #seen = new Map<string, { hash: number; at: number; repeats: number }>();

  /** Records the datagram and says whether it continues a loop. */
  repeats(ip: string, port: number, data: Uint8Array, now = performance.now()): boolean {
    const key = `${ip}|${port}`;
    const hash = fingerprint(data);
    const last = this.#seen.get(key);
    if (last === undefined) {
      if (this.#seen.size >= MAX_SOURCES) this.#prune(now);
      this.#seen.set(key, { hash, at: now, repeats: 0 });
      return false;
    }
    last.repeats = last.hash === hash && now - last.at < LOOP_WINDOW ? last.repeats + 1 : 0;
    last.hash = hash;
    last.at = now;
    return last.repeats >= LOOP_REPEATS;
  }

  #prune(now: number): void {
    for (const [key, entry] of this.#seen) {
      if (now - entry.at >= LOOP_WINDOW) this.#seen.delete(key);
    }
    // Still full (a flood of fresh sources): start over rather than grow.
    if (this.#seen.size >= MAX_SOURCES) this.#seen.clear();
  }
}

/** FNV-1a over the length and the first 256 bytes. */
function fingerprint(data: Uint8Array): number {
  return fnv1a(data, Math.min(data.length, 256), FNV_OFFSET ^ data.length);
}

function openUdp(hostname: string, port: number): Deno.DatagramConn {
  try {
    return Deno.listenDatagram({ hostname, port, transport: "udp" });
  } catch (error) {
    throw explain(error, { hostname, port, transport: "udp" });
  }
}
