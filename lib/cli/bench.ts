/**
 * `echod bench`: its options and what they parse into.
 *
 * @module
 */

import type { BenchMode } from "../bench/measure.ts";
import { BENCH_DEFAULTS, type BenchConfig } from "../bench/options.ts";
import { UsageError } from "../errors.ts";
import type { CutKind, Expectation } from "../bench/expect.ts";
import { parseSize } from "../units.ts";
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
    {
      name: "expect-close",
      kind: "boolean",
      optionalValue: "BYTES",
      help: "the server closes connections (a fault port): a clean close after exactly BYTES " +
        "echoed bytes (or anywhere, every byte before it exact) passes; the bench reconnects",
    },
    {
      name: "expect-reset",
      kind: "boolean",
      optionalValue: "BYTES",
      help: "likewise for a reset (ECONNRESET) after exactly BYTES echoed bytes, or anywhere",
    },
    {
      name: "expect-stall",
      kind: "boolean",
      optionalValue: "BYTES",
      help:
        "likewise for a stall (no echo for --stall-timeout) after BYTES echoed bytes, or anywhere",
    },
    {
      name: "stall-timeout",
      kind: "string",
      value: "DURATION",
      help: "a connection waiting this long for any echo counts as stalled and is closed; " +
        "also bounds the end of a run (default: 5s)",
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
    "echod bench 127.0.0.1:7001 --expect-close=1000",
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
    expect: expectation(opts, mode),
    connections,
    size,
    window: opts.size("window", BENCH_DEFAULTS.window),
    duration: opts.positiveTime("duration", BENCH_DEFAULTS.duration),
    count: opts.count("count", 0),
    rate: opts.count("rate", 0),
    warmup: opts.time("warmup", BENCH_DEFAULTS.warmup),
    stallTimeout: opts.positiveTime("stall-timeout", BENCH_DEFAULTS.stallTimeout),
    workers,
    connectTimeout: opts.positiveTime("connect-timeout", BENCH_DEFAULTS.connectTimeout),
    json: opts.has("json"),
    expectGreeting: opts.has("expect-greeting"),
    html: opts.path("html"),
  };
}

const CUTS: readonly CutKind[] = ["close", "reset", "stall"];

/** The cut `--expect-close`, `--expect-reset` or `--expect-stall` names (at most one of them). */
function expectation(opts: OptionValues, mode: BenchMode): Expectation | undefined {
  const given = CUTS.filter((cut) => opts.has(`expect-${cut}`));
  if (given.length > 1) {
    throw new UsageError(
      `--expect-${given[0]} and --expect-${given[1]} exclude each other: give one`,
    );
  }
  if (given.length === 0) return undefined;
  const cut = given[0];
  const flag = `--expect-${cut}`;
  if (mode === "hold") {
    throw new UsageError(`${flag} does not apply to --mode hold: use rr, stream or connect`);
  }
  const text = opts.last(`expect-${cut}`)!;
  if (text === "") return { cut };
  const bytes = parseSize(text);
  if (bytes === undefined) {
    throw new UsageError(
      `${flag}=${text}: BYTES is not a size: use e.g. ${flag}=1000, ${flag}=64KiB, or no value`,
    );
  }
  return { cut, bytes };
}
