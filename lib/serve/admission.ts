/**
 * Admission: decides at accept time whether a connection may stay, against
 * a total limit and a per-address limit. A refused connection is closed at
 * once by the caller, never queued.
 *
 * @module
 */

import { fnv1a } from "../fnv.ts";
import { canonicalIp } from "../ip.ts";
import { DEFAULT_MAX_CONNS, DEFAULT_MAX_CONNS_PER_IP } from "./defaults.ts";

/** Why a connection was refused. */
export type RefusalReason = "max-conns" | "max-conns-per-ip";

/** Connection limits; `0` means unlimited. */
export interface AdmissionOptions {
  /**
   * Most connections open at once, across all listeners.
   * @default {10000}
   */
  maxConns?: number;
  /**
   * Most connections open at once from one peer address.
   * @default {64}
   */
  maxConnsPerIp?: number;
}

/** Counts admitted connections, in total and per peer address, exactly, in one thread. */
export class Admission implements Admitter {
  #maxConns: number;
  #maxPerIp: number;
  #active = 0;
  #perIp = new Map<string, number>();

  /** Creates an admission controller with the given limits. */
  constructor(options: AdmissionOptions = {}) {
    this.#maxConns = options.maxConns ?? DEFAULT_MAX_CONNS;
    this.#maxPerIp = options.maxConnsPerIp ?? DEFAULT_MAX_CONNS_PER_IP;
  }

  /** Connections admitted and not yet released. */
  get active(): number {
    return this.#active;
  }

  /**
   * Admits a connection from `ip` (already normalised by {@linkcode peerKey})
   * and returns `undefined`, or returns why it is refused. Every admission
   * must be matched by one {@linkcode Admission.release}.
   */
  admit(ip: string): RefusalReason | undefined {
    if (this.#maxConns > 0 && this.#active >= this.#maxConns) {
      return "max-conns";
    }
    const fromIp = this.#perIp.get(ip) ?? 0;
    if (this.#maxPerIp > 0 && fromIp >= this.#maxPerIp) {
      return "max-conns-per-ip";
    }
    this.#active++;
    this.#perIp.set(ip, fromIp + 1);
    return undefined;
  }

  /** Releases a connection admitted from `ip`. */
  release(ip: string): void {
    this.#active--;
    const left = (this.#perIp.get(ip) ?? 1) - 1;
    if (left > 0) this.#perIp.set(ip, left);
    else this.#perIp.delete(ip);
  }
}

/**
 * The address a peer is counted and matched under: its canonical text (see
 * `ip.ts`), so `2001:DB8::2` and `2001:db8:0::2` share one allowance and an
 * IPv4-mapped peer (`::ffff:192.0.2.1`, `::ffff:c000:201`) counts as the
 * IPv4 address it carries. Text that is not an address is kept as it is.
 */
export function peerKey(hostname: string): string {
  return canonicalIp(hostname) ?? hostname;
}

/** What the server needs from an admission controller. */
export interface Admitter {
  /** Admits a connection from `ip` or says why not. */
  admit(ip: string): RefusalReason | undefined;
  /** Releases a connection admitted from `ip`. */
  release(ip: string): void;
}

// 2^20 per-address counters: 4 MiB shared by all workers.
const BUCKETS = 1 << 20;

/** Allocates the memory a {@linkcode SharedAdmission} works on, to share between workers. */
export function sharedAdmissionMemory(): SharedArrayBuffer {
  return new SharedArrayBuffer((1 + BUCKETS) * Int32Array.BYTES_PER_ELEMENT);
}

/**
 * Admission shared by several workers through a `SharedArrayBuffer`, with
 * atomic check-and-increment so that no race lets a limit be exceeded. The
 * per-address count lives in one of 2^20 buckets chosen by a hash of the
 * address: exact unless two active addresses share a bucket, in which case
 * they share one allowance (never more than the limit, sometimes less).
 */
export class SharedAdmission implements Admitter {
  #total: Int32Array;
  #perIp: Int32Array;
  #maxConns: number;
  #maxPerIp: number;

  /** Creates a view of `memory` (from {@linkcode sharedAdmissionMemory}) with these limits. */
  constructor(memory: SharedArrayBuffer, options: AdmissionOptions = {}) {
    this.#total = new Int32Array(memory, 0, 1);
    this.#perIp = new Int32Array(memory, Int32Array.BYTES_PER_ELEMENT, BUCKETS);
    this.#maxConns = options.maxConns ?? DEFAULT_MAX_CONNS;
    this.#maxPerIp = options.maxConnsPerIp ?? DEFAULT_MAX_CONNS_PER_IP;
  }

  /** Admits a connection from `ip` (normalised by {@linkcode peerKey}) or says why not. */
  admit(ip: string): RefusalReason | undefined {
    if (!reserve(this.#total, 0, this.#maxConns)) return "max-conns";
    if (!reserve(this.#perIp, bucketOf(ip), this.#maxPerIp)) {
      Atomics.sub(this.#total, 0, 1);
      return "max-conns-per-ip";
    }
    return undefined;
  }

  /** Releases a connection admitted from `ip`. */
  release(ip: string): void {
    Atomics.sub(this.#total, 0, 1);
    Atomics.sub(this.#perIp, bucketOf(ip), 1);
  }
}

/** Adds one to `counters[i]` unless it is at `limit` (0: no limit); says whether it did. */
function reserve(counters: Int32Array, i: number, limit: number): boolean {
  for (;;) {
    const current = Atomics.load(counters, i);
    if (limit > 0 && current >= limit) return false;
    if (Atomics.compareExchange(counters, i, current, current + 1) === current) return true;
  }
}

/** Room for any address text (IPv6 with a zone is under 64 bytes). */
const keyBytes = new Uint8Array(256);
const encoder = new TextEncoder();

/** FNV-1a over the address text, folded to a bucket index. */
function bucketOf(ip: string): number {
  const { written } = encoder.encodeInto(ip, keyBytes);
  return fnv1a(keyBytes, written) & (BUCKETS - 1);
}
