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
import { writeAll, type Writer } from "./net.ts";
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

/** What lines are written to: stderr or an open file. */
interface Output extends Writer {
  close?(): void;
}

/** Bytes of log lines waiting for a slow output beyond which new lines are dropped (and counted). */
const MAX_QUEUED = 256 * 1024;

/** How long closing waits for queued lines to be written before giving up on them. */
const FLUSH_TIMEOUT = 2_000;

/**
 * Where log lines go: stderr or a file, written asynchronously from a
 * bounded queue. A stalled output (a pipe nobody reads, a hung disk) never
 * blocks echoing: lines past the queue's size are dropped, counted, and the
 * count is written as a line of its own once the output moves again.
 */
class LogOutput {
  #open: () => Promise<Output>;
  #out?: Promise<Output>;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #dropped = 0;
  #writing?: Promise<void>;
  #reopen = false;

  constructor(open: () => Promise<Output>) {
    this.#open = open;
  }

  /** Queues one line; drops it when the queue is full. */
  write(bytes: Uint8Array): void {
    if (this.#queued + bytes.length > MAX_QUEUED) {
      this.#dropped++;
      return;
    }
    this.#queue.push(bytes);
    this.#queued += bytes.length;
    this.#kick();
  }

  /** Starts the writer unless it runs; it restarts itself for lines queued as it ended. */
  #kick(): void {
    if (this.#writing !== undefined) return;
    this.#writing = this.#drain().finally(() => {
      this.#writing = undefined;
      if (this.#queue.length > 0) this.#kick();
    });
  }

  /** Closes and reopens the output before the next line (a file moved by logrotate). */
  reopen(): void {
    this.#reopen = true;
    this.write(new Uint8Array(0));
  }

  /** Waits for queued lines to be written, at most `timeoutMs`; then closes the output. */
  async close(timeoutMs = FLUSH_TIMEOUT): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let late = false;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        late = true;
        resolve();
      }, timeoutMs);
    });
    while (this.#writing !== undefined && !late) await Promise.race([this.#writing, deadline]);
    clearTimeout(timer);
    const out = await this.#out?.catch(() => undefined);
    try {
      out?.close?.();
    } catch {
      // Already closed.
    }
  }

  async #drain(): Promise<void> {
    const encoder = new TextEncoder();
    while (this.#queue.length > 0) {
      if (this.#reopen) {
        this.#reopen = false;
        const old = await this.#out?.catch(() => undefined);
        try {
          old?.close?.();
        } catch {
          // Already closed.
        }
        this.#out = undefined;
      }
      const out = await (this.#out ??= this.#open());
      const chunk = this.#queue.shift()!;
      this.#queued -= chunk.length;
      try {
        if (this.#dropped > 0) {
          const note =
            `echod: ${this.#dropped} log lines dropped: the log output was not keeping up\n`;
          this.#dropped = 0;
          await writeAll(out, encoder.encode(note));
        }
        await writeAll(out, chunk);
      } catch {
        // A closed stderr or a full disk must not take the echo service down with it.
      }
    }
  }
}

let output: LogOutput | undefined;

/**
 * Reopens the log file (for SIGHUP after logrotate moved it); a no-op
 * when logging to stderr.
 */
export function reopenLog(): void {
  output?.reopen();
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
  // Not Deno.stderr itself: closing the log must leave stderr open for main.ts.
  const stderr: Output = { write: (data) => Deno.stderr.write(data) };
  return queuedSink(new LogOutput(() => Promise.resolve(stderr)), formatter);
}

function fileSink(path: string, formatter: TextFormatter): Sink {
  requirePermission(`--log-file ${path}`, [{ name: "write", path }]);
  const open = () => Deno.open(path, { append: true, create: true });
  try {
    // Opened once here so that a bad path is one line at start-up.
    Deno.openSync(path, { append: true, create: true }).close();
  } catch (error) {
    throw new RuntimeError(
      `cannot open log file ${path}: ${(error as Error).message}`,
    );
  }
  output = new LogOutput(open);
  return queuedSink(output, formatter);
}
