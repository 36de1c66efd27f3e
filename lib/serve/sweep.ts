/**
 * Idle and lifetime limits for every open connection, enforced by one
 * periodic sweep rather than a timer per connection or per chunk: the echo
 * loop only advances byte counters, and the sweep notices when they stop.
 *
 * @module
 */

/** What the sweep needs to know about a connection. */
export interface Expirable {
  /** `performance.now()` when the connection was admitted. */
  readonly openedAt: number;
  /** Bytes read so far. */
  readonly bytesIn: number;
  /** Bytes written so far. */
  readonly bytesOut: number;
  /** Sweep bookkeeping: the byte total last seen. Start at 0. */
  seenBytes: number;
  /** Sweep bookkeeping: when the byte total last moved. Start at `openedAt`. */
  quietSince: number;
  /** `performance.now()` by which the TLS handshake must be done; cleared once it is. */
  handshakeBy?: number;
}

/** Why the sweep ended a connection. */
export type ExpiryReason = "idle-timeout" | "max-lifetime" | "tls-handshake";

/** Limits for {@linkcode startSweep}; `0` disables a limit. */
export interface SweepOptions<T extends Expirable> {
  /** Milliseconds with no byte in either direction before a connection is ended. */
  idleTimeout: number;
  /** Milliseconds after which a connection is ended whatever it is doing. */
  maxLifetime: number;
  /**
   * Milliseconds a TLS handshake may take (only sets the sweep period: each
   * item carries its own `handshakeBy`).
   * @default {0}
   */
  handshakeTimeout?: number;
  /** Called once for each connection past a limit; it should close the connection. */
  onExpire: (item: T, reason: ExpiryReason) => void;
}

/** A running sweep. */
export interface Sweep {
  /** Stops the sweep. */
  stop(): void;
}

/**
 * Starts sweeping `items` (a live collection: it is read afresh each round).
 * A limit is enforced within one sweep period of its deadline; the period is
 * an eighth of the shorter limit, between 25 ms and 1 s (1 s with no limit).
 */
export function startSweep<T extends Expirable>(
  items: Iterable<T>,
  options: SweepOptions<T>,
): Sweep {
  const { idleTimeout, maxLifetime, onExpire } = options;
  const shortest = Math.min(
    idleTimeout || Infinity,
    maxLifetime || Infinity,
    options.handshakeTimeout || Infinity,
  );
  const period = Math.max(25, Math.min(1_000, shortest / 8));
  const id = setInterval(function sweep() {
    const now = performance.now();
    for (const item of items) {
      const moved = item.bytesIn + item.bytesOut;
      if (moved !== item.seenBytes) {
        item.seenBytes = moved;
        item.quietSince = now;
      }
      if (item.handshakeBy !== undefined && now >= item.handshakeBy) {
        onExpire(item, "tls-handshake");
      } else if (maxLifetime > 0 && now - item.openedAt >= maxLifetime) {
        onExpire(item, "max-lifetime");
      } else if (idleTimeout > 0 && now - item.quietSince >= idleTimeout) {
        onExpire(item, "idle-timeout");
      }
    }
  }, period);
  return {
    stop() {
      clearInterval(id);
    },
  };
}
