/**
 * Where log lines go (stderr or a file), written asynchronously from a
 * bounded queue, so that logging never blocks echoing; `log.ts` puts it
 * behind LogTape.
 *
 * @module
 */

import { writeAll, type Writer } from "./net.ts";
import { stderrOutput } from "./stderr.ts";

/** What lines are written to: stderr or an open file. */
export interface Output extends Writer {
  /** Closes the output (a file; stderr stays open). */
  close?(): void;
  /**
   * Takes back the last `bytes` bytes written (what a failed write left of
   * a line), or throws when it cannot.
   */
  unwrite?(bytes: number): Promise<void>;
}

/** Bytes of log lines waiting for a slow output beyond which new lines are dropped (and counted). */
const MAX_QUEUED = 256 * 1024;

/** How long closing waits for queued lines to be written before giving up on them. */
const FLUSH_TIMEOUT = 2_000;

/** How often a log file that cannot be opened or written is tried again. */
const RETRY_INTERVAL = 5_000;

/** A line to write, or a request to reopen the output, answered with whether that worked. */
type Entry = Uint8Array | ((reopened: boolean) => void);

/** Formats a record of the log's own (a failure, a recovery, the dropped-lines note). */
export type Say = (
  level: "error" | "warning" | "info",
  message: string,
  properties?: object,
) => string;

/**
 * Where log lines go: stderr or a file, written asynchronously from a
 * bounded queue. A stalled output (a pipe nobody reads, a hung disk) never
 * blocks echoing: lines past the queue's size are dropped, counted, and the
 * count is written as a line of its own once the output moves again.
 *
 * A file that cannot be opened or written (its folder removed, a full
 * disk) is said once on stderr; its lines are dropped and counted while it
 * fails, and it is tried again on the next reopen (SIGHUP) or every
 * {@linkcode RETRY_INTERVAL}. A line is written whole or not at all: what
 * a failed write left of one is taken back.
 */
export class LogOutput {
  #open: () => Promise<Output>;
  #file?: string;
  #say: Say;
  #out?: Output;
  /** Why lines cannot be written now (undefined while they can). */
  #failure?: string;
  #queue: Entry[] = [];
  #queued = 0;
  #dropped = 0;
  #dropReason = "";
  /** A write failed after part of a line and that part could not be taken back. */
  #torn = false;
  #writing?: Promise<void>;
  #retry?: ReturnType<typeof setInterval>;
  #retryDue = false;
  #closed = false;

  /**
   * `say` formats the log's own records; `file` names the file in them,
   * undefined for stderr (which is not told about its own failures).
   */
  constructor(open: () => Promise<Output>, say: Say, file?: string) {
    this.#open = open;
    this.#say = say;
    this.#file = file;
  }

  /** Queues one line; drops it when the queue is full. */
  write(bytes: Uint8Array): void {
    if (this.#queued + bytes.length > MAX_QUEUED) {
      this.#drop("the log output was not keeping up");
      return;
    }
    this.#queue.push(bytes);
    this.#queued += bytes.length;
    this.#kick();
  }

  /**
   * Closes and reopens the output after the lines queued so far (a file
   * moved by logrotate); resolves with whether it could be opened.
   */
  reopen(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.#queue.push(resolve);
      this.#kick();
    });
  }

  /** Starts the writer unless it runs; it restarts itself for work that came as it ended. */
  #kick(): void {
    if (this.#writing !== undefined) return;
    this.#writing = this.#drain().finally(() => {
      this.#writing = undefined;
      if (this.#queue.length > 0 || this.#retryDue) this.#kick();
    });
  }

  /** Waits for queued lines to be written, at most `timeoutMs`; then closes the output. */
  async close(timeoutMs = FLUSH_TIMEOUT): Promise<void> {
    this.#closed = true;
    // A last try, so that lines dropped at the end are counted in the log too.
    if (this.#dropped > 0) {
      this.#retryDue = true;
      this.#kick();
    }
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
    clearInterval(this.#retry);
    this.#closeOutput();
  }

  /** Writes, reopens or retries until there is nothing left to do; never throws. */
  async #drain(): Promise<void> {
    for (;;) {
      const entry = this.#queue.shift();
      if (entry instanceof Uint8Array) {
        this.#queued -= entry.length;
        if (this.#out === undefined && this.#failure === undefined) await this.#openOutput();
        if (this.#out === undefined) this.#drop(this.#failure!);
        else await this.#write(entry);
      } else if (entry !== undefined) {
        this.#closeOutput();
        entry(await this.#openOutput({ reopen: true }));
      } else if (this.#retryDue) {
        this.#retryDue = false;
        if (this.#out === undefined) await this.#openOutput();
        // Writes the dropped-lines note, or ends a failure that dropped nothing.
        if (this.#out !== undefined) await this.#write(new Uint8Array(0));
      } else {
        return;
      }
    }
  }

  /** Opens the output; on failure says so (once, or again on each reopen asked for). */
  async #openOutput(options: { reopen?: boolean } = {}): Promise<boolean> {
    try {
      this.#out = await this.#open();
      return true;
    } catch (error) {
      this.#fail(options.reopen ? "reopen" : "open", error, options.reopen);
      return false;
    }
  }

  #closeOutput(): void {
    try {
      this.#out?.close?.();
    } catch {
      // Already closed.
    }
    this.#out = undefined;
  }

  /**
   * Writes one line, after the note on lines dropped before it, as one
   * write: both or neither. A failure drops the line (counted).
   */
  async #write(line: Uint8Array): Promise<void> {
    const out = this.#out!;
    const dropped = this.#dropped;
    const note = dropped === 0
      ? ""
      : this.#say("warning", "{dropped} log lines dropped: {reason}", {
        dropped,
        reason: this.#dropReason,
      });
    const bytes = note === "" && !this.#torn ? line : concat(this.#torn ? "\n" : "", note, line);
    try {
      await writeWhole(out, bytes);
    } catch (error) {
      this.#fail("write", error);
      if (line.length > 0) this.#drop(this.#failure!);
      if (error instanceof PartlyWritten) this.#torn = !error.undone;
      return;
    }
    this.#torn = false;
    this.#dropped -= dropped;
    if (this.#failure !== undefined) {
      this.#failure = undefined;
      clearInterval(this.#retry);
      this.#retry = undefined;
      this.#tell(this.#say(
        "info",
        "the log file {file} can be written again; {dropped} log lines were dropped",
        { file: this.#file, dropped },
      ));
    }
  }

  /** Counts a dropped line and why lines are being dropped. */
  #drop(why: string): void {
    if (this.#dropped === 0) this.#dropReason = why;
    this.#dropped++;
  }

  /**
   * Enters (or stays in) failure: says it on stderr when it is new or
   * `again`, and retries every {@linkcode RETRY_INTERVAL} until it ends.
   */
  #fail(what: "open" | "reopen" | "write", error: unknown, again = false): void {
    const done = what === "write" ? "written" : "opened";
    if (this.#failure === undefined || again) {
      const advice = what === "write"
        ? "; log lines are dropped (and counted) until it can be written again"
        : `; log lines are dropped (and counted) until it can be opened: send SIGHUP once it can (echod also retries every ${
          RETRY_INTERVAL / 1000
        } s)`;
      this.#tell(this.#say("error", `cannot ${what} the log file {file}: {error}${advice}`, {
        file: this.#file,
        error: reason(error),
      }));
    }
    const output = this.#file === undefined ? "stderr" : "the log file";
    this.#failure = `${output} could not be ${done} (${reason(error)})`;
    if (this.#retry === undefined && !this.#closed) {
      const retry = this.#retry = setInterval(() => {
        this.#retryDue = true;
        this.#kick();
      }, RETRY_INTERVAL);
      Deno.unrefTimer(retry);
    }
  }

  /** Says something about the log file on stderr (for a file only: stderr needs no notice). */
  #tell(line: string): void {
    if (this.#file === undefined) return;
    writeAll(STDERR, new TextEncoder().encode(line)).catch(() => {});
  }
}

/**
 * stderr as the log writes it (through a worker on Windows: see `stderr.ts`).
 * Not Deno.stderr itself: closing the log must leave stderr open for main.ts.
 */
export const STDERR: Output = stderrOutput();

/** A write that failed after part of its bytes; `undone` says whether they were taken back. */
class PartlyWritten extends Error {
  /** Whether the part written was taken back. */
  readonly undone: boolean;

  constructor(cause: unknown, undone: boolean) {
    super((cause as Error).message, { cause });
    this.undone = undone;
  }
}

/** Writes all of `bytes`, or on failure takes back what was written of them and throws. */
async function writeWhole(out: Output, bytes: Uint8Array): Promise<void> {
  const sent = { bytesOut: 0 };
  try {
    await writeAll(out, bytes, sent);
  } catch (error) {
    if (sent.bytesOut === 0) throw error;
    const undone = await out.unwrite?.(sent.bytesOut).then(() => true, () => false) ?? false;
    throw new PartlyWritten(error, undone);
  }
}

/** The OS's reason for a failure, without the path Deno adds: `No space left on device (os error 28)`. */
function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return /^.*?\(os error \d+\)/.exec(message)?.[0] ?? message;
}

function concat(...parts: (string | Uint8Array)[]): Uint8Array {
  const encoder = new TextEncoder();
  const bytes = parts.map((part) => typeof part === "string" ? encoder.encode(part) : part);
  const out = new Uint8Array(bytes.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of bytes) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Opens `path` for appending, as an output that can take back the tail of a failed write. */
export async function openFile(path: string): Promise<Output> {
  const file = await Deno.open(path, { append: true, create: true });
  return {
    write: (data) => file.write(data),
    close: () => file.close(),
    async unwrite(bytes) {
      // Appending leaves the position at the end of what this descriptor
      // wrote: cut there, unless another writer has appended since.
      // (Seeking, not stat(), which needs read permission.)
      const end = await file.seek(0, Deno.SeekMode.Current);
      const size = await file.seek(0, Deno.SeekMode.End);
      if (end !== size || end < bytes) throw new Error("another writer appended since");
      await file.truncate(end - bytes);
    },
  };
}
