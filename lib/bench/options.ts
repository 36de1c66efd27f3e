/**
 * How to load the target: the options of one bench run.
 *
 * @module
 */

import type { Target } from "../net.ts";
import type { BenchMode } from "./measure.ts";
import type { Expectation } from "./expect.ts";

/** The defaults of a bench run, shared by the command line and the runner. */
export const BENCH_DEFAULTS = {
  /** Concurrent connections. */
  connections: 50,
  /** Message size (rr). */
  size: 512,
  /** Write size (stream). */
  streamSize: 65_536,
  /** Stream: bytes in flight per connection. */
  window: 262_144,
  /** Milliseconds to measure. */
  duration: 10_000,
  /** Milliseconds of warm-up. */
  warmup: 1_000,
  /** Milliseconds to wait for a connection. */
  connectTimeout: 5_000,
  /** Milliseconds without an echo after which a waiting connection counts as stalled. */
  stallTimeout: 5_000,
} as const;

/** How to load the target. */
export interface BenchOptions {
  /**
   * The server sends a greeting line on each connection (`echod --greeting`):
   * read and skip it before any load, so every echoed byte is still verified.
   * @default {false}
   */
  expectGreeting?: boolean;
  /** Target host name or address. */
  host: string;
  /** Target port. */
  port: number;
  /**
   * `rr`: request/response; `stream`: bulk throughput; `connect`: open, echo 1 byte, close;
   * `hold`: open connections and keep them.
   * @default {"rr"}
   */
  mode?: BenchMode;
  /**
   * Concurrent connections.
   * @default {50}
   */
  connections?: number;
  /**
   * Bytes per message (rr) or per write (stream).
   * @default {512 for rr, 65536 for stream}
   */
  size?: number;
  /**
   * Stream mode: most bytes in flight per connection.
   * @default {262144}
   */
  window?: number;
  /**
   * Milliseconds of measurement, after the warm-up.
   * @default {10000}
   */
  duration?: number;
  /**
   * Stop after this many messages (rr) or connections (connect) instead of after `duration`.
   * @default {0}
   */
  count?: number;
  /**
   * Open loop: messages (rr) or connections (connect) per second, across all connections.
   * 0 runs closed loop, each connection as fast as the server answers.
   * @default {0}
   */
  rate?: number;
  /**
   * Milliseconds of load before measuring starts.
   * @default {1000}
   */
  warmup?: number;
  /**
   * Milliseconds to wait for a connection to open.
   * @default {5000}
   */
  connectTimeout?: number;
  /**
   * The cut the server is expected to make (a fault port): a connection
   * cut so, with every byte before it exact, is a pass and the bench opens
   * another; any other cut is an error. Not for hold mode.
   */
  expect?: Expectation;
  /**
   * Milliseconds without an echo (or an expected cut) after which a waiting
   * connection is ended and counted as stalled; also bounds the end of a run.
   * @default {5000}
   */
  stallTimeout?: number;
  /**
   * Hold mode: called once every connection is open and has echoed; the
   * connections stay open until it resolves (or `duration` passes if it is not given).
   */
  onHeld?: (open: number) => Promise<void>;
  /** Called when measuring starts (after the warm-up) and when it ends. */
  onPhase?: (phase: "measuring" | "done") => void;
  /** Called about once a second while measuring. */
  onProgress?: (progress: BenchProgress) => void;
}

/** A progress sample. */
export interface BenchProgress {
  /** Milliseconds measured so far. */
  elapsedMs: number;
  /** Messages (rr), connections (connect, hold) or bytes (stream) completed so far. */
  done: number;
  /** Errors so far. */
  errors: number;
}

/** Everything the `bench` command runs with. */
export interface BenchConfig {
  /** Skip a greeting line on each connection. */
  expectGreeting: boolean;
  /** Where to send load. */
  target: Target;
  /** What to measure. */
  mode: BenchMode;
  /** Concurrent connections. */
  connections: number;
  /** Message (rr) or write (stream) size in bytes. */
  size: number;
  /** Stream mode: bytes in flight per connection. */
  window: number;
  /** Milliseconds to measure. */
  duration: number;
  /** Messages or connections to complete instead of a duration; 0 for none. */
  count: number;
  /** Open-loop rate per second; 0 for closed loop. */
  rate: number;
  /** Milliseconds of warm-up. */
  warmup: number;
  /** Web Workers to spread the connections over. */
  workers: number;
  /** Milliseconds to wait for each connection. */
  connectTimeout: number;
  /** The cut the server is expected to make. */
  expect?: Expectation;
  /** Milliseconds without an echo after which a waiting connection counts as stalled. */
  stallTimeout: number;
  /** Print the report as JSON. */
  json: boolean;
  /** Write an HTML report to this file. */
  html?: string;
}
