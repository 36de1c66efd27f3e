/**
 * How the benchmarks run a server: echod's options there, and waiting
 * until a server echoes.
 *
 * @module
 */

/**
 * echod's options in the benchmarks, before `--port PORT`: no connection
 * limits, no deadlines, no periodic stats, warnings only.
 */
export const BENCH_SERVE_FLAGS: readonly string[] = [
  "--max-conns",
  "0",
  "--max-conns-per-ip",
  "0",
  "--idle-timeout",
  "0",
  "--max-lifetime",
  "0",
  "--stats-interval",
  "0",
  "--log-level",
  "warning",
];

/**
 * Resolves once a server on 127.0.0.1:`port` echoes a byte; throws an
 * error naming `name` after 30 s.
 */
export async function untilEchoing(port: number, name: string): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new Uint8Array([42]));
      const got = await conn.read(new Uint8Array(1));
      conn.close();
      if (got === 1) return;
    } catch {
      // Not listening yet.
    }
    if (performance.now() > deadline) {
      throw new Error(`${name} did not echo on port ${port} within 30 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
