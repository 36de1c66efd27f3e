/**
 * Opening bench connections: with a deadline, reading past a greeting,
 * retrying through a full backlog, and at most so many at once.
 *
 * @module
 */

import { readLine } from "../net.ts";
import { BenchFailure, kindOf, type Measurement } from "./measure.ts";
import { judgeEnd } from "./expect.ts";
import { BENCH_DEFAULTS, type BenchOptions } from "./options.ts";

/** Lets at most `limit` opens through at once, so thousands of them do not flood the backlog. */
export class OpenLimit {
  #free: number;
  #queue: (() => void)[] = [];

  /** Creates a limit of `limit` at once. */
  constructor(limit: number) {
    this.#free = limit;
  }

  /** Waits for a turn. */
  async enter(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#queue.push(resolve));
  }

  /** Ends a turn. */
  leave(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#free++;
  }
}

// Opening thousands of connections at once overflows the listen backlog;
// a few tries with a short pause ride that out.
export async function openWithRetry(options: BenchOptions, m: Measurement): Promise<Deno.Conn> {
  for (let attempt = 0;; attempt++) {
    try {
      return await open(options);
    } catch (error) {
      if (attempt >= 5 || m.stopped) throw error;
      await delay(50 * (attempt + 1));
    }
  }
}

/** Opens a connection for a loop that keeps going, or counts why not and pauses briefly. */
export async function reconnect(
  options: BenchOptions,
  m: Measurement,
): Promise<Deno.Conn | undefined> {
  try {
    return await open(options);
  } catch (error) {
    // A server that cuts connections at once (in the greeting) may be what is expected.
    judgeEnd(m, error, { expect: options.expect });
    await delay(100);
    return undefined;
  }
}

/** Opens a connection or throws a {@linkcode BenchFailure} that says why not. */
export async function open(options: BenchOptions): Promise<Deno.TcpConn> {
  const timeout = options.connectTimeout ?? BENCH_DEFAULTS.connectTimeout;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connecting = Deno.connect({ hostname: options.host, port: options.port });
  try {
    const conn = await Promise.race([
      connecting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new BenchFailure("timeout", `no answer within ${timeout} ms`)),
          timeout,
        );
      }),
    ]);
    conn.setNoDelay(true);
    if (options.expectGreeting) await skipGreeting(conn, timeout);
    return conn;
  } catch (error) {
    connecting.then((c) => c.close(), () => {});
    if (error instanceof BenchFailure) throw error;
    if (error instanceof Deno.errors.ConnectionRefused) {
      throw new BenchFailure(
        "refused",
        "connection refused",
      );
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Reads the greeting line a server sends first; nothing may follow it yet. */
async function skipGreeting(conn: Deno.Conn, timeoutMs: number): Promise<void> {
  const reading = readLine(conn);
  reading.catch(() => {}); // settled below, or abandoned when the time is up
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const { rest } = await Promise.race([
      reading,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new BenchFailure("timeout", `no greeting within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
    if (rest.length > 0) {
      throw new BenchFailure("mismatch", "bytes after the greeting before any were sent");
    }
  } catch (error) {
    conn.close();
    if (error instanceof BenchFailure) throw error;
    const kind = error instanceof Deno.errors.UnexpectedEof ? "early-close" : kindOf(error);
    throw new BenchFailure(
      kind === "reset" || kind === "early-close" ? kind : "other",
      `no greeting line: ${(error as Error).message}`,
    );
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
