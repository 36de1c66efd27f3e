/**
 * Client-side helpers for tests: exact reads, echo round trips, and
 * deterministic pseudo-random data so a test can check every byte.
 *
 * @module
 */

import assert from "node:assert/strict";
import { closeQuietly, writeAll } from "../lib/net.ts";

// The library's own: writing all of a buffer, and closing what may be closed.
export { closeQuietly, writeAll };

/** Connects over TCP. */
export function connect(hostname: string, port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname, port });
}

/** Reads exactly `n` bytes, or throws if the peer closes first. */
export async function readExactly(
  conn: Deno.Conn,
  n: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  for (let got = 0; got < n;) {
    const r = await conn.read(out.subarray(got));
    if (r === null) throw new Error(`peer closed after ${got} of ${n} bytes`);
    got += r;
  }
  return out;
}

/** Reads until the peer closes; returns everything read. */
export async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(65536);
  for (;;) {
    const r = await conn.read(buf);
    if (r === null) break;
    chunks.push(buf.slice(0, r));
    total += r;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Resolves `true` when the peer closes (read returns EOF or the
 * connection is reset) without sending anything.
 */
export async function closedByPeer(conn: Deno.Conn): Promise<boolean> {
  try {
    return (await conn.read(new Uint8Array(1))) === null;
  } catch (error) {
    return error instanceof Deno.errors.ConnectionReset;
  }
}

/** Sends `text` and returns what comes back (same length). */
export async function roundTrip(
  conn: Deno.Conn,
  text: string,
): Promise<string> {
  const data = new TextEncoder().encode(text);
  await writeAll(conn, data);
  return new TextDecoder().decode(await readExactly(conn, data.length));
}

/** Deterministic pseudo-random bytes (xorshift32) from `seed`. */
export function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A UDP socket on `hostname` (port 0: any free one). */
export function udpSocket(hostname: string, port = 0): Deno.DatagramConn {
  return Deno.listenDatagram({ hostname, port, transport: "udp" });
}

/**
 * 127.0.0.1 as an IPv4-mapped IPv6 address where the OS routes those
 * (Linux, macOS: the peer then arrives on the dual-stack `::` listener as
 * `::ffff:127.0.0.1`). Windows does not (connecting fails with error 10051),
 * so there it is plain 127.0.0.1, which reaches the `0.0.0.0` listener: the
 * peer is then plain IPv4, which is what Windows clients are.
 */
export const MAPPED_LOOPBACK: string = Deno.build.os === "windows"
  ? "127.0.0.1"
  : "::ffff:127.0.0.1";

/**
 * Opens `count` connections, 200 at a time, running `opened` on each as
 * soon as it is open (before the next batch).
 */
export async function openMany(
  port: number,
  count: number,
  opened: (conn: Deno.Conn) => Promise<void> = async () => {},
): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < count; i += 200) {
    const batch = Math.min(200, count - i);
    conns.push(
      ...await Promise.all(Array.from({ length: batch }, async () => {
        const conn = await connect("127.0.0.1", port);
        await opened(conn);
        return conn;
      })),
    );
  }
  return conns;
}

/** Milliseconds until the peer closes `conn` (EOF or reset), or -1 if it is still open at `limitMs`. */
export async function closedWithin(conn: Deno.Conn, limitMs: number): Promise<number> {
  const start = performance.now();
  const timer = setTimeout(() => closeQuietly(conn), limitMs);
  try {
    const n = await conn.read(new Uint8Array(64));
    return n === null ? performance.now() - start : -1;
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionReset) return performance.now() - start;
    return -1; // our own timer closed it: still open on echod's side
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `size` patterned bytes on `conn` and checks they all come back, then closes it. */
export async function echoesBack(conn: Deno.Conn, size: number): Promise<void> {
  const data = pattern(size);
  await writeAll(conn, data);
  assert.deepEqual(await readExactly(conn, data.length), data);
  conn.close();
}

/**
 * Sends `request` on a new connection to `hostname:port` and reads until the
 * peer closes; returns what came back before the close (or a reset). A
 * refused connection rejects.
 */
export async function exchange(hostname: string, port: number, request: string): Promise<string> {
  const conn = await connect(hostname, port);
  const chunks: number[] = [];
  try {
    await writeAll(conn, new TextEncoder().encode(request)).catch(() => {});
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      chunks.push(...buf.subarray(0, n));
    }
  } finally {
    closeQuietly(conn);
  }
  return new TextDecoder().decode(new Uint8Array(chunks));
}
