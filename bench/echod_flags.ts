/**
 * The serve options every benchmark runs echod with: no connection limits,
 * no deadlines, no periodic stats, warnings only; the port is appended last.
 *
 * @module
 */

/** echod's options in the benchmarks, before `--port PORT`. */
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
