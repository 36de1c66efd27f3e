/**
 * Admission: decides at accept time whether a connection may stay, against
 * a total limit and a per-address limit. A refused connection is closed at
 * once by the caller, never queued.
 *
 * @module
 */

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

/** Default total connection limit. */
export const DEFAULT_MAX_CONNS = 10_000;

/** Default per-address connection limit. */
export const DEFAULT_MAX_CONNS_PER_IP = 64;

/** Counts admitted connections, in total and per peer address. */
export class Admission {
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
 * The address a peer is counted under: an IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.1`), as a dual-stack listener reports IPv4 peers, counts
 * as the IPv4 address it carries.
 */
export function peerKey(hostname: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(hostname);
  return mapped === null ? hostname : mapped[1];
}
