/**
 * Test harness: runs echod as users do (`deno run --allow-net main.ts`), in
 * JSON log mode, and exposes its log records as they arrive so tests can
 * wait on them instead of sleeping.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { parseTarget } from "../lib/cli/addresses.ts";
import { runProgram } from "../lib/process.ts";
import { canReadMemory, readProc, residentBytes } from "../lib/process_usage.ts";
import { exchange } from "./_client.ts";
import { poll } from "./_poll.ts";
import { DENO_FLAGS } from "./_programs.ts";

/**
 * Whether a test stops echod with a signal. On Windows a parent cannot send
 * a console program a signal (Deno's `kill` there is TerminateProcess), so
 * {@linkcode startEchod} enables `POST /quitquitquit` and
 * {@linkcode Echod.requestStop} uses it: the same drain, asked for by HTTP.
 */
export const SIGNALS: boolean = Deno.build.os !== "windows";

/** How echod's log names the stop a test asks for: `SIGTERM`, or `POST /quitquitquit` on Windows. */
export const STOP_NAME: string = SIGNALS ? "SIGTERM" : "POST /quitquitquit";

/**
 * The flags that let a test stop echod gracefully: none where signals can
 * be sent; on Windows, `--quitquitquit` and (unless `args` or `env` name
 * one) a metrics endpoint on loopback to serve it.
 */
export function stopFlags(args: string[], env: Record<string, string> = {}): string[] {
  if (SIGNALS || args.includes("--quitquitquit")) return [];
  const hasMetrics = args.some((a) => a === "--metrics" || a.startsWith("--metrics=")) ||
    env.ECHOD_METRICS !== undefined;
  return hasMetrics ? ["--quitquitquit"] : ["--metrics", "127.0.0.1:0", "--quitquitquit"];
}

/**
 * Whether a socket on `::` takes IPv4 too (Linux, macOS): echod then keeps
 * one listener and one UDP socket. On Windows `::` is IPv6-only, and echod
 * runs a second listener and socket on 0.0.0.0.
 */
export const DUAL_STACK: boolean = Deno.build.os !== "windows";

/** Whether this is Windows under Wine (the Windows lane), which Wine's environment names. */
export const WINE: boolean = Deno.build.os === "windows" &&
  Deno.env.get("WINECONFIGDIR") !== undefined;

/**
 * Whether every address of 127/8 is a loopback address one can bind
 * (Linux, Windows); macOS answers only on 127.0.0.1 unless aliased.
 */
export const WHOLE_LOOPBACK: boolean = Deno.build.os !== "darwin";

/** Whether /proc, `sh` and `ulimit` are there (Linux), for memory, CPU and descriptor tests. */
export const LINUX: boolean = Deno.build.os === "linux";

/**
 * `ignore` for a test that needs Linux (`/proc` for memory and CPU, `sh`
 * and `ulimit` for descriptor limits): elsewhere it prints why it is
 * skipped, and returns true.
 */
export function linuxOnly(test: string, needs: string): boolean {
  return skipUnless(LINUX, test, `it needs ${needs} (Linux; this is ${Deno.build.os})`);
}

/**
 * `ignore` for a test that reads echod's resident memory ({@linkcode Echod.rss}):
 * on Linux through `/proc`, on Windows through FFI (given `--allow-ffi`, as
 * the test tasks and the Windows lane give it); elsewhere it prints why it is
 * skipped, and returns true.
 */
export function memoryUnreadable(test: string): boolean {
  return skipUnless(
    canReadMemory(),
    test,
    Deno.build.os === "windows"
      ? "reading echod's memory on Windows needs --allow-ffi"
      : `it reads echod's memory through /proc or Windows' API (this is ${Deno.build.os})`,
  );
}

/**
 * `ignore` for a test that cannot apply here: when `applies` is false, it
 * prints `skipping TEST: WHY` and returns true.
 */
export function skipUnless(applies: boolean, test: string, why: string): boolean {
  if (applies) return false;
  console.log(`skipping ${test}: ${why}`);
  return true;
}

/** The repository root (where main.ts is). */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));

/** One JSON Lines log record from echod. */
export type LogRecord = Record<string, unknown> & {
  level: string;
  message: string;
  logger: string;
};

/** How to start echod. */
export interface StartOptions {
  /** Deno permission flags. @default {["--allow-net"]} */
  permissions?: string[];
  /** Shell commands run before exec, e.g. `ulimit -n 64`. */
  shellPrefix?: string;
  /** Wait for the "listening" record. @default {true} */
  waitReady?: boolean;
  /** Variables added to the environment echod inherits. @default {none} */
  env?: Record<string, string>;
  /** Leave out `--port 0` (to give the port another way). @default {false} */
  noPortFlag?: boolean;
  /** Leave out {@linkcode stopFlags} (the endpoint Windows tests stop echod with). @default {false} */
  noStopEndpoint?: boolean;
}

/** A running echod process. */
export class Echod {
  /** Every log record so far. */
  readonly records: LogRecord[] = [];
  /** Lines on stderr that were not JSON (should stay empty). */
  readonly otherLines: string[] = [];
  /** The port from the "listening" record. */
  port = 0;
  /** The "listening" record. */
  ready?: LogRecord;
  #child: Deno.ChildProcess;
  #waiters: {
    match: (r: LogRecord) => boolean;
    resolve: (r: LogRecord) => void;
    reject: (error: Error) => void;
  }[] = [];
  #stderrDone: Promise<void>;
  #stdout: Promise<string>;
  #status?: Promise<Deno.CommandStatus>;

  constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#stderrDone = this.#readStderr();
    this.#stdout = new Response(child.stdout).text();
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid;
  }

  async #readStderr(): Promise<void> {
    const lines = this.#child.stderr.pipeThrough(new TextDecoderStream())
      .pipeThrough(lineSplitter());
    for await (const line of lines) {
      let record: LogRecord;
      try {
        record = JSON.parse(line);
      } catch {
        this.otherLines.push(line);
        continue;
      }
      this.records.push(record);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.match(record)) return true;
        w.resolve(record);
        return false;
      });
    }
    // echod has exited: no record will come, so no waiter waits out its timeout.
    for (const w of this.#waiters) w.reject(new Error(`echod exited:\n${this.#seen()}`));
    this.#waiters = [];
  }

  /** Everything echod wrote to stderr so far, for a failure message. */
  #seen(): string {
    return `${this.records.map((r) => JSON.stringify(r)).join("\n")}\n${
      this.otherLines.join("\n")
    }`;
  }

  /**
   * Resolves with the first record (past or future) that `match` accepts.
   * Rejects after `timeoutMs` (a guard against a hung test, not a sleep),
   * or as soon as echod exits without one.
   */
  waitFor(
    match: (r: LogRecord) => boolean,
    timeoutMs = 20_000,
  ): Promise<LogRecord> {
    const seen = this.records.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no matching log record within ${timeoutMs} ms; got:\n${this.#seen()}`));
      }, timeoutMs);
      this.#waiters.push({
        match,
        resolve(r) {
          clearTimeout(timer);
          resolve(r);
        },
        reject(error) {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  /** Waits for a record whose message contains `text`. */
  waitForMessage(text: string, timeoutMs?: number): Promise<LogRecord> {
    return this.waitFor((r) => r.message.includes(text), timeoutMs);
  }

  /** Sends a signal. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    this.#child.kill(signal);
  }

  /**
   * Asks echod to stop as its user would: with `signal`, or on Windows
   * (for any signal but SIGKILL) with `POST /quitquitquit`, which
   * {@linkcode startEchod} enables there. Resolves once it is asked; a
   * process already gone is not an error.
   */
  async requestStop(signal: Deno.Signal = "SIGTERM"): Promise<void> {
    if (SIGNALS || signal === "SIGKILL") {
      try {
        this.kill(signal);
      } catch {
        // Already gone.
      }
      return;
    }
    const address = this.ready?.metricsAddress;
    if (typeof address !== "string") throw new Error("echod has no metrics endpoint to stop it");
    await postQuit(address);
  }

  /** Waits for exit; returns the status and everything printed. */
  async exited(): Promise<{ code: number; stdout: string }> {
    this.#status ??= this.#child.status;
    const status = await this.#status;
    await this.#stderrDone;
    return { code: status.code, stdout: await this.#stdout };
  }

  /** Asks echod to stop ({@linkcode Echod.requestStop}) and waits for exit. */
  async stop(
    signal: Deno.Signal = "SIGTERM",
  ): Promise<{ code: number; stdout: string }> {
    await this.requestStop(signal);
    return await this.exited();
  }

  /** Resident set size in bytes (Linux; Windows with `--allow-ffi`). */
  rss(): Promise<number> {
    return residentBytes(this.pid);
  }

  /** CPU time (user + system) the process has used, in seconds (Linux). */
  async cpuSeconds(): Promise<number> {
    const stat = await readProc(`/proc/${this.pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }
}

/** Starts `main.ts serve --port 0 --log-format json ...args` and waits until it listens. */
export async function startEchod(
  args: string[] = [],
  options: StartOptions = {},
): Promise<Echod> {
  const permissions = options.permissions ?? ["--allow-net"];
  const argv = [
    "run",
    ...DENO_FLAGS,
    ...permissions,
    "--no-prompt",
    "main.ts",
    ...(options.noPortFlag ? [] : ["--port", "0"]),
    "--log-format",
    "json",
    ...args,
    ...(options.noStopEndpoint ? [] : stopFlags(args, options.env)),
  ];
  const command = options.shellPrefix
    ? new Deno.Command("sh", {
      args: [
        "-c",
        `${options.shellPrefix}; exec "$0" "$@"`,
        Deno.execPath(),
        ...argv,
      ],
      cwd: ROOT,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
    : new Deno.Command(Deno.execPath(), {
      args: argv,
      cwd: ROOT,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
  const echod = new Echod(command.spawn());
  if (options.waitReady ?? true) {
    const ready = await Promise.race([
      echod.waitForMessage("listening on"),
      echod.exited().then(({ code }) => {
        throw new Error(
          `echod exited with ${code} before listening:\n${echod.otherLines.join("\n")}`,
        );
      }),
    ]);
    echod.ready = ready;
    echod.port = ready.port as number;
  }
  return echod;
}

/**
 * Waits until the JSON Lines log file `path` holds a record that `match`
 * accepts, and returns every record in it then. The log is in a file, with
 * no stream to wait on, so the file is read again every 20 ms; a line not
 * yet ended by its newline is left for the next read. Rejects after
 * `timeoutMs` (a guard against a hung test).
 */
export async function waitForLogFile(
  path: string,
  match: (r: LogRecord) => boolean,
  timeoutMs = 20_000,
): Promise<LogRecord[]> {
  let text = "";
  return await poll(async () => {
    text = await Deno.readTextFile(path).catch(() => "");
    const records: LogRecord[] = text.slice(0, text.lastIndexOf("\n") + 1).split("\n")
      .filter((line) => line !== "").map((line) => JSON.parse(line));
    return records.some(match) ? records : undefined;
  }, {
    what: `a matching record in ${path}`,
    timeoutMs,
    intervalMs: 20,
    describe: () => `\n${text}`,
  });
}

/** Options for {@linkcode runEchod}. */
export interface RunEchodOptions {
  /**
   * Text fed on stdin, which is then closed.
   * @default {no stdin}
   */
  input?: string;
  /** Variables added to the environment echod inherits. @default {none} */
  env?: Record<string, string>;
}

/** Runs `deno run <permissions> main.ts ...args` to completion. */
export async function runEchod(
  args: string[],
  permissions: string[] = ["--allow-net"],
  options: RunEchodOptions = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await runProgram(
    Deno.execPath(),
    ["run", ...DENO_FLAGS, ...permissions, "--no-prompt", "main.ts", ...args],
    { cwd: ROOT, ...options },
  );
  return { code, stdout, stderr };
}

/**
 * Sends `POST /quitquitquit` to echod's metrics endpoint at `address`
 * (`127.0.0.1:PORT`) and reads the answer; an endpoint already closed
 * (echod is stopping or gone) is not an error.
 */
export async function postQuit(address: string): Promise<void> {
  const { host, port } = parseTarget(address);
  const request = "POST /quitquitquit HTTP/1.1\r\nhost: echod\r\ncontent-length: 0\r\n\r\n";
  await exchange(host, port, request).catch(() => {}); // refused: echod is gone already
}

function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      for (const part of parts) if (part !== "") controller.enqueue(part);
    },
    flush(controller) {
      if (rest !== "") controller.enqueue(rest);
    },
  });
}
