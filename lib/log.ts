/**
 * Logging for echod, on LogTape: one category tree under `echod`, four
 * levels, text for people or JSON Lines for machines, to stderr by default
 * (no permission needed) or to a file (needs write permission). Lines are
 * written asynchronously from a bounded queue: logging never blocks echoing.
 *
 * @module
 */

import {
  configure,
  dispose,
  getLogger,
  getTextFormatter,
  type Logger,
  type LogRecord,
  type Sink,
  type TextFormatter,
} from "@logtape/logtape";
import { RuntimeError } from "./errors.ts";
import { LogOutput, openFile, type Say, STDERR } from "./log_output.ts";
import { requirePermission } from "./permissions.ts";

/** The levels `--log-level` accepts, most severe first. */
export const LOG_LEVELS = ["error", "warning", "info", "debug"] as const;

/** A level `--log-level` accepts. */
export type LogLevelName = typeof LOG_LEVELS[number];

/** The formats `--log-format` accepts. */
export const LOG_FORMATS = ["text", "json"] as const;

/** A format `--log-format` accepts. */
export type LogFormat = typeof LOG_FORMATS[number];

/** Where and how echod logs. */
export interface LogOptions {
  /**
   * Least severe level written.
   * @default {"info"}
   */
  level?: LogLevelName;
  /**
   * `text` (one readable line per record) or `json` (JSON Lines, properties flattened).
   * @default {"text"}
   */
  format?: LogFormat;
  /**
   * Append to this file instead of writing to stderr. Needs write permission.
   * @default {undefined}
   */
  file?: string;
}

/** Returns the logger for a part of echod, e.g. `getLog("conn")` → category `echod.conn`. */
export function getLog(...category: string[]): Logger {
  return getLogger(["echod", ...category]);
}

/**
 * Configures LogTape for the whole process. Throws {@linkcode UsageError}
 * when `file` is given without write permission, so the user learns which
 * flag to add instead of meeting a permission prompt or a stack trace.
 */
export async function setupLogging(options: LogOptions = {}): Promise<void> {
  const formatter = options.format === "json"
    ? jsonLine
    : getTextFormatter({ timestamp: "rfc3339", level: "ABBR", value: "bare" });
  const sink = options.file === undefined
    ? stderrSink(formatter)
    : fileSink(options.file, formatter);
  await configure({
    reset: true,
    sinks: { main: sink },
    loggers: [
      {
        category: ["echod"],
        lowestLevel: options.level ?? "info",
        sinks: ["main"],
      },
      {
        category: ["logtape", "meta"],
        lowestLevel: "warning",
        sinks: ["main"],
      },
    ],
  });
}

/** Flushes and closes the log sinks; call once before exiting. */
export async function closeLogging(): Promise<void> {
  await dispose();
}

/**
 * Lets one record through per interval and counts the ones held back, so a
 * flood of refusals or accept errors costs a line every few seconds, not a
 * line per event.
 */
export class LogThrottle {
  #interval: number;
  #last = -Infinity;
  #held = 0;

  /** Creates a throttle that opens at most once every `intervalMs`. */
  constructor(intervalMs: number) {
    this.#interval = intervalMs;
  }

  /**
   * Returns how many events were held back since the last one let through,
   * or `undefined` when this event is to be held back too.
   */
  take(now: number = performance.now()): number | undefined {
    if (now - this.#last < this.#interval) {
      this.#held++;
      return undefined;
    }
    const held = this.#held;
    this.#last = now;
    this.#held = 0;
    return held;
  }
}

/**
 * One JSON object per record: timestamp, level, logger, the message with
 * values rendered bare, and every property as a top-level field.
 */
function jsonLine(record: LogRecord): string {
  return JSON.stringify({
    "@timestamp": new Date(record.timestamp).toISOString(),
    level: record.level.toUpperCase(),
    logger: record.category.join("."),
    message: record.message.map(String).join(""),
    ...record.properties,
  }) + "\n";
}

let output: LogOutput | undefined;

/**
 * Reopens the log file (for SIGHUP after logrotate moved it) once the
 * lines logged before are written, and resolves with whether it could be
 * opened; when it could not, that was said on stderr and lines are dropped
 * and counted until it can. Resolves true at once when logging to stderr.
 */
export function reopenLog(): Promise<boolean> {
  return output?.reopen() ?? Promise.resolve(true);
}

/** A LogTape sink over a {@linkcode LogOutput}. */
function queuedSink(out: LogOutput, formatter: TextFormatter): Sink & AsyncDisposable {
  const encoder = new TextEncoder();
  const sink = function queue(record: LogRecord): void {
    out.write(encoder.encode(formatter(record)));
  } as Sink & AsyncDisposable;
  sink[Symbol.asyncDispose] = () => out.close();
  return sink;
}

function stderrSink(formatter: TextFormatter): Sink {
  output = undefined; // stderr is not reopened
  return queuedSink(new LogOutput(() => Promise.resolve(STDERR), sayWith(formatter)), formatter);
}

function fileSink(path: string, formatter: TextFormatter): Sink {
  requirePermission(`--log-file ${path}`, [{ name: "write", path }]);
  try {
    // Opened once here so that a bad path is one line at start-up.
    Deno.openSync(path, { append: true, create: true }).close();
  } catch (error) {
    throw new RuntimeError(
      `cannot open log file ${path}: ${(error as Error).message}`,
    );
  }
  output = new LogOutput(() => openFile(path), sayWith(formatter), path);
  return queuedSink(output, formatter);
}

/** Formats the log's own records with the formatter of the rest. */
function sayWith(formatter: TextFormatter): Say {
  return function say(level, message, properties = {}) {
    // "{name}" placeholders, as in getLog().info(), filled from `properties`.
    const parts = message.split(/\{(\w+)\}/).map((part, i) =>
      i % 2 === 0 ? part : (properties as Record<string, unknown>)[part]
    );
    return formatter({
      category: ["echod"],
      level,
      message: parts,
      rawMessage: message,
      timestamp: Date.now(),
      properties: properties as Record<string, unknown>,
    });
  };
}
