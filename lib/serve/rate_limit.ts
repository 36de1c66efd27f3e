/**
 * Token buckets keyed by source address: `--accept-rate` for new TCP
 * connections and `--udp-rate` for datagrams. Each key may take `rate`
 * events per second with bursts up to `burst`; keys idle long enough to be
 * full again are forgotten, so memory follows the active sources only.
 *
 * @module
 */

interface Bucket {
  tokens: number;
  at: number;
}

/** Per-key token buckets. */
export class RateLimiter {
  #rate: number;
  #burst: number;
  #buckets = new Map<string, Bucket>();
  #prunedAt = 0;
  #maxKeys: number;

  /**
   * Creates a limiter of `rate` events per second per key, with bursts of
   * up to `burst` (default: one second's worth, at least 1). With
   * `maxKeys`, at most that many keys are remembered: a new key past it is
   * refused until old ones are forgotten, so a flood from many sources
   * cannot grow memory without end.
   */
  constructor(rate: number, burst: number = Math.max(1, rate), options: { maxKeys?: number } = {}) {
    this.#rate = rate;
    this.#burst = burst;
    this.#maxKeys = options.maxKeys ?? Infinity;
  }

  /** Takes one token for `key`; false when its bucket is empty. */
  take(key: string, now: number = performance.now()): boolean {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#maxKeys) {
        this.#prune(now);
        if (this.#buckets.size >= this.#maxKeys) return false;
      }
      bucket = { tokens: this.#burst, at: now };
      this.#buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(
        this.#burst,
        bucket.tokens + ((now - bucket.at) * this.#rate) / 1_000,
      );
      bucket.at = now;
    }
    if (now - this.#prunedAt > 10_000) this.#prune(now);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Keys currently remembered. */
  get size(): number {
    return this.#buckets.size;
  }

  #prune(now: number): void {
    this.#prunedAt = now;
    const refill = (this.#burst * 1_000) / this.#rate;
    for (const [key, bucket] of this.#buckets) {
      if (now - bucket.at >= refill) this.#buckets.delete(key);
    }
  }
}
