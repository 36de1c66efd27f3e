/**
 * `echod bench`: its options and what they parse into.
 *
 * @module
 */

import type { BenchMode } from "../bench/measure.ts";
import { BENCH_DEFAULTS, type BenchConfig } from "../bench/options.ts";
import { UsageError } from "../errors.ts";
import type { Target } from "../net.ts";
import {
  type CommandSpec,
  CONNECT_TIMEOUT,
  EXPECT_GREETING,
  HELP,
  type OptionValues,
} from "./options.ts";

/** The bench command's options. */
export const BENCH: CommandSpec = {
  name: "bench",
  summary: "load any TCP echo server and verify every byte it echoes",
  usage: "echod bench HOST:PORT [options]",
  target: true,
  options: [
    {
      name: "mode",
      kind: "string",
      short: "m",
      value: "MODE",
      help: "rr (request/response), stream (throughput), connect (open/echo/close), " +
        "hold (keep connections open) (default: rr)",
    },
    {
      name: "connections",
      kind: "string",
      short: "c",
      value: "N",
      help: "concurrent connections (default: 50)",
    },
    {
      name: "size",
      kind: "string",
      short: "s",
      value: "BYTES",
      help: "message size for rr, write size for stream (default: 512; stream: 64KiB)",
    },
    {
      name: "window",
      kind: "string",
      value: "BYTES",
      help: "stream: bytes in flight per connection (default: 256KiB)",
    },
    {
      name: "duration",
      kind: "string",
      short: "d",
      value: "DURATION",
      help: "how long to measure; hold: how long to hold (default: 10s)",
    },
    {
      name: "count",
      kind: "string",
      short: "n",
      value: "N",
      help: "stop after N messages (rr) or connections (connect) instead",
    },
    {
      name: "rate",
      kind: "string",
      value: "N",
      help: "open loop: N messages (rr) or connections (connect) per second in total",
    },
    {
      name: "warmup",
      kind: "string",
      value: "DURATION",
      help: "load before measuring starts (default: 1s)",
    },
    {
      name: "workers",
      kind: "string",
      short: "w",
      value: "N",
      help: "spread the connections over N threads (default: 1)",
    },
    CONNECT_TIMEOUT,
    EXPECT_GREETING,
    { name: "json", kind: "boolean", help: "print the report as JSON" },
    {
      name: "html",
      kind: "string",
      value: "FILE",
      help: "also write a self-contained HTML report with a latency chart",
    },
    HELP,
  ],
  examples: [
    "echod bench 127.0.0.1:40007",
    "echod bench [::1]:40007 --mode stream -c 8 -d 5s",
    "echod bench 127.0.0.1:7 --rate 10000 --json",
  ],
};

const BENCH_MODES: readonly BenchMode[] = ["rr", "stream", "connect", "hold"];

/** Turns the values read against {@linkcode BENCH} into a {@linkcode BenchConfig}. */
export function benchConfig(target: Target, opts: OptionValues): BenchConfig {
  const mode = opts.choice("mode", BENCH_MODES, "rr");
  const connections = opts.count("connections", BENCH_DEFAULTS.connections, 1);
  const workers = opts.count("workers", 1, 1);
  if (workers > connections) {
    throw new UsageError(
      `--workers ${workers} is more than --connections ${connections}: each worker needs one`,
    );
  }
  const size = opts.size(
    "size",
    mode === "stream" ? BENCH_DEFAULTS.streamSize : BENCH_DEFAULTS.size,
  );
  if (size > 16 * 1_048_576) {
    throw new UsageError(`--size ${opts.last("size")} is too large: at most 16MiB`);
  }
  return {
    target,
    mode,
    connections,
    size,
    window: opts.size("window", BENCH_DEFAULTS.window),
    duration: opts.positiveTime("duration", BENCH_DEFAULTS.duration),
    count: opts.count("count", 0),
    rate: opts.count("rate", 0),
    warmup: opts.time("warmup", BENCH_DEFAULTS.warmup),
    workers,
    connectTimeout: opts.positiveTime("connect-timeout", BENCH_DEFAULTS.connectTimeout),
    json: opts.has("json"),
    expectGreeting: opts.has("expect-greeting"),
    html: opts.path("html"),
  };
}
