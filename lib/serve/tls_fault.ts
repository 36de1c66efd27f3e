/**
 * A fault profile (`--fault`) on a TLS connection: the fault loop of
 * `fault_pump.ts` run on the session's plaintext, through a
 * {@linkcode FaultIo} over Node's `TLSSocket`. Sizes count plaintext bytes;
 * each write of the loop (a slice, a rate step) is a TLS record of its own;
 * `close-after` sends close_notify then a FIN; `reset-after` resets the TCP
 * connection under the session (`reset.ts`) once every record before it has
 * reached the socket. The TLS session, handshake and greeting are as in
 * `tls.ts`, whose clean echo is not touched.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { TLSSocket } from "node:tls";
import { type FaultIo, faultPump, type FaultPumpOptions, type FaultTally } from "./fault_pump.ts";
import { resetConn } from "./reset.ts";
import { RawStream, type TlsEchoOptions } from "./tls.ts";

/**
 * Plaintext the session has decrypted and the fault loop not yet taken
 * beyond which no more is read from the socket (the loop's own bound and
 * TLS's buffers come on top).
 */
const MAX_PENDING = 16 * 1024;

/** What {@linkcode faultTls} needs besides the connection. */
export interface TlsFaultOptions extends TlsEchoOptions {
  /** The fault loop's options; the reset (of the TCP connection) is this module's. */
  fault: Omit<FaultPumpOptions, "reset" | "early" | "totals">;
}

/**
 * Runs a TLS session on `conn` and echoes its plaintext as `options.fault`
 * says, after the handshake and the greeting. Resolves when the loop is done
 * (the peer closed, or a cut ended it); rejects when the handshake or the
 * connection fails. Closing `conn` ends it at any point.
 */
export async function faultTls(
  conn: Deno.Conn,
  state: FaultTally,
  options: TlsFaultOptions,
): Promise<void> {
  const raw = new RawStream(conn, options.early);
  const socket = new TLSSocket(raw.duplex, { isServer: true, secureContext: options.context });
  const io = new TlsIo(socket, raw);
  let resetting: Promise<void> | undefined;
  try {
    await io.secure;
    options.onSecure?.();
    if (options.greeting !== undefined) await io.write(options.greeting);
    await faultPump(io, state, {
      ...options.fault,
      totals: options.totals,
      // Not before the records echoed so far are in the socket: the reset would discard them.
      reset: () => resetting = io.flushed().then(() => void resetConn(conn), () => {}),
    });
    if (resetting !== undefined) return await resetting;
    await io.end();
  } finally {
    socket.destroy();
  }
}

/**
 * The plaintext side of a `TLSSocket` as the fault loop reads and writes it.
 * Reading holds what the session decrypted until the loop takes it, and
 * stops the socket (and its stream) while more than {@linkcode MAX_PENDING}
 * bytes wait; a write resolves once its record has been written to the socket.
 */
class TlsIo implements FaultIo {
  /** Resolves when the handshake is done; rejects when the session fails first. */
  readonly secure: Promise<void>;
  #socket: TLSSocket;
  #raw: RawStream;
  #chunks: Buffer[] = [];
  #pending = 0;
  #held = false;
  #ended = false;
  #failure?: Error;
  #closed = false;
  // Waits that the session's close ends: one per wait, dropped when it settles
  // (a race against one lasting promise would keep a reaction per write).
  #waits = new Set<(error: Error) => void>();
  #wake?: () => void;

  constructor(socket: TLSSocket, raw: RawStream) {
    this.#socket = socket;
    this.#raw = raw;
    this.secure = this.#unlessClosed(
      new Promise<void>((resolve) => socket.once("secure", resolve)),
    );
    socket.on("data", (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#pending += chunk.length;
      if (this.#pending > MAX_PENDING && !this.#held) {
        this.#held = true;
        socket.pause();
        raw.hold = true;
      }
      this.#wake?.();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wake?.();
    });
    socket.on("error", (error: Error) => {
      this.#failure ??= error;
      socket.destroy();
    });
    socket.on("close", () => {
      this.#failure ??= new Deno.errors.BadResource("the TLS session is closed");
      this.#closed = true;
      for (const fail of this.#waits) fail(this.#failure);
      this.#waits.clear();
      this.#wake?.();
    });
  }

  async read(buf: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#ended) return null;
      if (this.#failure !== undefined) throw this.#failure;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    let n = 0;
    while (n < buf.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      const take = Math.min(chunk.length, buf.length - n);
      buf.set(chunk.subarray(0, take), n);
      n += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    this.#pending -= n;
    if (this.#held && this.#pending <= MAX_PENDING) {
      this.#held = false;
      this.#raw.hold = false;
      this.#socket.resume();
      this.#raw.wake();
    }
    return n;
  }

  async write(buf: Uint8Array): Promise<number> {
    const written = new Promise<void>((resolve, reject) => {
      // A view, not a copy: the loop never writes into what it echoes.
      this.#socket.write(Buffer.from(buf.buffer, buf.byteOffset, buf.length), (error) => {
        if (error) reject(error);
        else resolve();
      });
    });
    // One record at a time, each in the socket before the next is made.
    await this.#unlessClosed(written);
    await this.flushed();
    return buf.length;
  }

  /** Resolves once every record made so far is in the socket; rejects if the session closes first. */
  flushed(): Promise<void> {
    return this.#unlessClosed(this.#raw.flushed());
  }

  /** close_notify, then a FIN. */
  async closeWrite(): Promise<void> {
    await this.#unlessClosed(new Promise<void>((resolve) => this.#socket.end(resolve)));
  }

  /** Ends the session cleanly (close_notify and FIN, if not sent yet) and waits for it to close. */
  async end(): Promise<void> {
    if (!this.#socket.writableEnded) this.#socket.end();
    await this.#unlessClosed(new Promise<void>(() => {})).catch(() => {});
  }

  /** `promise`, or a rejection as soon as the session closes. */
  #unlessClosed<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#closed) return reject(this.#failure);
      this.#waits.add(reject);
      promise.then(resolve, reject).finally(() => this.#waits.delete(reject));
    });
  }
}
