/** RateLimiter, in-process, on a clock the test moves. */

import assert from "node:assert/strict";
import { RateLimiter } from "../lib/serve/rate_limit.ts";

Deno.test("RateLimiter.take() allows a burst, then the rate, per key", () => {
  const limiter = new RateLimiter(10, 5);
  const takes = (key: string, n: number, at: number) =>
    Array.from({ length: n }, () => limiter.take(key, at)).filter(Boolean).length;
  assert.equal(takes("a", 8, 0), 5, "the burst");
  assert.equal(takes("b", 8, 0), 5, "another key has its own bucket");
  assert.equal(takes("a", 3, 100), 1, "10/s: one token per 100 ms");
  assert.equal(takes("a", 10, 10_000), 5, "refilled to the burst, no more");
});

Deno.test("RateLimiter.take() with maxKeys refuses new keys past the limit until old ones are forgotten", () => {
  const limiter = new RateLimiter(1, 1, { maxKeys: 2 });
  assert.equal(limiter.take("a", 0), true);
  assert.equal(limiter.take("b", 0), true);
  assert.equal(limiter.take("c", 0), false, "a third source while two are remembered");
  assert.equal(limiter.size, 2);
  // Once a and b have refilled (1 s at 1/s), they are forgotten and c gets in.
  assert.equal(limiter.take("c", 20_000), true);
});
