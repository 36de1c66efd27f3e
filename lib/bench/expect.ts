/**
 * Benching a server that misbehaves on purpose: what the run expects (a
 * clean close, a reset or a stall, after so many echoed bytes or at any
 * point), how each connection's end is judged against it, and the
 * watchdog that ends stalled connections so a run stays bounded in time.
 *
 * @module
 */

import { closeQuietly } from "../net.ts";
import { BenchFailure, kindOf, type Measurement } from "./measure.ts";

/** How a server can cut a connection short. */
export type CutKind = "close" | "reset" | "stall";

/** The cut a run expects: of this kind, after exactly `bytes` echoed bytes or (none) anywhere. */
export interface Expectation {
  /** A clean close (EOF), a reset (ECONNRESET) or a stall (no echo for the stall timeout). */
  cut: CutKind;
  /** Echoed bytes on the connection when the cut comes; undefined: any number. */
  bytes?: number;
}

/**
 * Most bytes one connection may send under `expect`: a close or reset
 * expected after `bytes` means sending no more than that (more would be
 * left unread by the server, and a socket closed with unread data resets).
 * A stall is sent into until it blocks.
 */
export function sendLimit(expect: Expectation | undefined): number {
  if (expect === undefined || expect.bytes === undefined || expect.cut === "stall") {
    return Infinity;
  }
  return expect.bytes;
}

/**
 * One connection as the watchdog and the judge see it. The loops update
 * the counters in place (no allocation per chunk).
 */
export class Link {
  /** Bytes handed to write on this connection. */
  sent = 0;
  /** Bytes received on this connection. */
  got = 0;
  /** A write is under way (it blocks when the server stops reading). */
  writing = false;
  /** Everything is echoed and the expected cut is awaited. */
  awaitingCut = false;
  /** The watchdog ended the connection: no echo for the stall timeout. */
  stalled = false;
  /** A write was blocked when the stall was found. */
  stalledWriting = false;
  /** The watchdog's last look: `got` then, and when it last moved. */
  seen = 0;
  seenAt = 0;

  /** Watches `conn`. */
  constructor(readonly conn: Deno.Conn) {}

  /** Whether an echo or a cut is awaited. */
  get waiting(): boolean {
    return this.awaitingCut || this.sent > this.got;
  }
}

/**
 * Ends connections that wait for an echo (or an expected cut) and see no
 * byte for `timeoutMs`: a server that stops reading would otherwise hold
 * the bench forever. One timer for all connections.
 */
export class Watchdog {
  #links = new Set<Link>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #timeoutMs: number;

  /** A watchdog that ends a connection after `timeoutMs` without progress. */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** Starts watching `conn`. */
  watch(conn: Deno.Conn): Link {
    const link = new Link(conn);
    link.seenAt = performance.now();
    this.#links.add(link);
    // The sweep's granularity is a fifth of the timeout, within [10 ms, 250 ms].
    this.#timer ??= setInterval(
      () => this.#sweep(),
      Math.max(10, Math.min(250, this.#timeoutMs / 5)),
    );
    return link;
  }

  /** Stops watching `link`. */
  unwatch(link: Link): void {
    this.#links.delete(link);
    if (this.#links.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #sweep(): void {
    const now = performance.now();
    for (const link of this.#links) {
      if (!link.waiting || link.got !== link.seen) {
        link.seen = link.got;
        link.seenAt = now;
      } else if (now - link.seenAt >= this.#timeoutMs) {
        link.stalled = true;
        link.stalledWriting = link.writing;
        this.unwatch(link);
        closeQuietly(link.conn); // the loop's pending read and write fail now
      }
    }
  }
}

/** Reads once after everything was echoed: only the expected cut may come. */
export async function awaitCut(link: Link, buf: Uint8Array): Promise<never> {
  link.awaitingCut = true;
  const n = await link.conn.read(buf);
  if (n === null) throw new BenchFailure("early-close", "server closed the connection");
  throw new BenchFailure("mismatch", "server sent bytes that were never sent to it");
}

/**
 * Counts how a connection ended early: `error` is what ended it (a clean
 * close is a {@linkcode BenchFailure} of kind `early-close`), `link` the
 * connection (undefined when it never opened). A cut of the expected kind
 * at the expected byte is a pass; the wrong kind, or the right kind at the
 * wrong byte, is an error of its own kind.
 */
export function judgeEnd(
  m: Measurement,
  error: unknown,
  context: { link?: Link; expect?: Expectation },
): void {
  const { link, expect } = context;
  const cut = link?.stalled ? "stall" : cutOf(error);
  if (cut === undefined) {
    m.fail(kindOf(error));
    return;
  }
  const got = link?.got ?? 0; // no link: cut while opening (before any byte, or in the greeting)
  if (link?.stalled) m.stalled(link.stalledWriting);
  if (link?.awaitingCut && cut === "stall" && expect?.cut !== "stall") {
    // Echoed up to the expected byte, then neither a close nor a reset came.
    m.cut(got, false);
    m.fail("wrong-cut");
    return;
  }
  if (expect?.cut !== cut) {
    m.fail(cut === "close" ? "early-close" : cut);
    return;
  }
  const right = expect.bytes === undefined || got === expect.bytes;
  m.cut(got, right);
  if (!right) m.fail("wrong-cut");
}

// How long a close is watched for the reset that may follow it, and how often.
const RESET_WATCH_MS = 100;
const RESET_POLL_MS = 2;

/**
 * When a cut is expected and the server closed, tells whether a reset came
 * right behind that close: a server whose runtime cannot send a bare RST
 * (echod's own `reset-after` is one) sends FIN then RST. After a FIN a read
 * returns end-of-stream whatever follows, so an empty write (which sends
 * nothing, but reports the socket's error) is made every few milliseconds
 * for {@linkcode RESET_WATCH_MS}: once the RST is in it fails, and the end
 * is a reset. Anything else returns `error` as it was.
 */
export async function resetBehindClose(
  error: unknown,
  conn: Deno.Conn | undefined,
  expect: Expectation | undefined,
): Promise<unknown> {
  if (conn === undefined || expect === undefined || expect.cut === "stall") return error;
  if (cutOf(error) !== "close") return error;
  const nothing = new Uint8Array(0);
  const deadline = performance.now() + RESET_WATCH_MS;
  try {
    while (performance.now() < deadline) {
      await conn.write(nothing);
      await new Promise((resolve) => setTimeout(resolve, RESET_POLL_MS));
    }
  } catch (probe) {
    if (cutOf(probe) === "reset") {
      return new BenchFailure("reset", "server closed, then reset the connection");
    }
  }
  return error;
}

/** Whether `error` is the server cutting the connection (a close or a reset). */
export function isCut(error: unknown): boolean {
  return cutOf(error) !== undefined;
}

function cutOf(error: unknown): CutKind | undefined {
  const kind = kindOf(error);
  if (kind === "early-close") return "close";
  if (kind === "reset") return "reset";
  return undefined;
}
