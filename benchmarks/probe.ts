/**
 * Preloaded into a server by `benchmarks/anatomy.ts` (`--preload`, with
 * `--v8-flags=--expose-gc`): on SIGWINCH it collects garbage twice and
 * prints one line of memory figures to stderr, `ANATOMY {json}`. Needs no
 * permission.
 *
 * @module
 */

import { getHeapSpaceStatistics } from "node:v8";

Deno.addSignalListener("SIGWINCH", function report() {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const memory = Deno.memoryUsage();
  const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
  console.error(`ANATOMY ${
    JSON.stringify({
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      external: memory.external,
      newSpace: newSpace?.space_size ?? 0,
    })
  }`);
});
