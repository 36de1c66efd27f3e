/**
 * TLS echo over a TCP connection echod has already accepted and admitted.
 *
 * Why not `Deno.listenTls`: its connections run the handshake in a task of
 * their own that owns the socket, and `close()` waits for that handshake to
 * end, so a peer that connects and stays silent can never be closed: every
 * refused or timed-out connection kept its descriptor. Here echod accepts
 * plain TCP (with its own accept loop, limits and PROXY header), and only
 * admitted connections get a TLS session (Node's `TLSSocket`, server side)
 * layered on the `Deno.Conn`, which echod can close at any moment.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import { type SecureContext, TLSSocket } from "node:tls";
import type { Tally } from "./pump.ts";
import { closeQuietly, writeAll } from "../net.ts";

// The read buffer of a TLS connection's socket: a TLS record is at most 16 KiB,
// but a waiting read should hold little.
const READ_BUFFER = 4096;

/** Bytes of TLS output waiting for the socket beyond which no more is read. */
const MAX_UNSENT = 64 * 1024;

/** What {@linkcode echoTls} needs besides the connection. */
export interface TlsEchoOptions {
  /** The server's certificate and key (`TlsCredentials` in `tls_files.ts`). */
  context: SecureContext;
  /**
   * Counters shared by every connection, advanced alongside the connection's own.
   * @default {a private tally}
   */
  totals?: Tally;
  /**
   * Bytes already read from the peer (after a PROXY header): the start of its handshake.
   * @default {undefined}
   */
  early?: Uint8Array;
  /** Called once the handshake has completed. */
  onSecure?: () => void;
  /** A line to send once the handshake is done, before any echo (`--greeting`). */
  greeting?: Uint8Array;
}

/**
 * Runs a TLS session on `conn` and echoes the decrypted bytes back through
 * it until the peer closes. Resolves then; rejects when the handshake or the
 * connection fails. Closing `conn` ends it at any point, handshake included.
 */
export function echoTls(conn: Deno.Conn, state: Tally, options: TlsEchoOptions): Promise<void> {
  const totals = options.totals ?? { bytesIn: 0, bytesOut: 0 };
  const raw = new RawStream(conn, options.early);
  const socket = new TLSSocket(raw.duplex, { isServer: true, secureContext: options.context });
  return new Promise<void>((resolve, reject) => {
    let failure: Error | undefined;
    socket.on("secure", () => {
      options.onSecure?.();
      if (options.greeting !== undefined) socket.write(options.greeting);
    });
    socket.on("data", function echo(chunk: Buffer) {
      state.bytesIn += chunk.length;
      totals.bytesIn += chunk.length;
      const flushed = socket.write(chunk, () => {
        state.bytesOut += chunk.length;
        totals.bytesOut += chunk.length;
      });
      if (!flushed) {
        socket.pause();
        raw.hold = true;
      }
    });
    socket.on("drain", () => {
      raw.hold = false;
      socket.resume();
      raw.wake();
    });
    socket.on("end", () => socket.end());
    socket.on("error", (error: Error) => {
      failure ??= error;
      socket.destroy();
    });
    socket.on("close", () => failure === undefined ? resolve() : reject(failure));
  });
}

/**
 * The TCP side of a TLS session: a Node stream over a `Deno.Conn`, so that
 * `TLSSocket` can run on it, with backpressure of its own. The stream
 * layers above do not reliably stop reading when the peer stops reading, so
 * this one does: no read from the socket while the echo is held (`hold`) or
 * while more than {@linkcode MAX_UNSENT} bytes wait to be written to it.
 */
export class RawStream {
  /** The Node side, for `TLSSocket`. */
  readonly duplex: Duplex;
  /** Set while the echo waits for the peer to read: stop reading from it. */
  hold = false;
  #conn: Deno.Conn;
  #unsent = 0;
  #wanted = false;
  #reading = false;
  #flushed?: PromiseWithResolvers<void>;

  /** A stream over `conn`; `early` is what was already read from it (after a PROXY header). */
  constructor(conn: Deno.Conn, early: Uint8Array | undefined) {
    this.#conn = conn;
    // deno-lint-ignore no-this-alias
    const self = this;
    this.duplex = new Duplex({
      read() {
        self.#wanted = true;
        self.wake();
      },
      write(chunk: Uint8Array, _encoding, done) {
        self.#unsent += chunk.length;
        writeAll(conn, chunk).then(() => {
          self.#unsent -= chunk.length;
          done();
          self.wake();
          if (self.#unsent === 0) self.#settleFlushed();
        }, done);
      },
      final(done) {
        conn.closeWrite().then(() => done(), done);
      },
      destroy(error, done) {
        closeQuietly(conn);
        done(error);
      },
    });
    if (early !== undefined && early.length > 0) this.duplex.push(Buffer.from(early));
  }

  /** Resolves once every byte given to the stream so far has been written to the socket. */
  flushed(): Promise<void> {
    if (this.#unsent === 0) return Promise.resolve();
    return (this.#flushed ??= Promise.withResolvers<void>()).promise;
  }

  #settleFlushed(): void {
    const flushed = this.#flushed;
    this.#flushed = undefined;
    flushed?.resolve();
  }

  /** Starts reading again if the stream wants data and nothing holds it back. */
  wake(): void {
    if (this.#reading || !this.#wanted || this.hold || this.#unsent > MAX_UNSENT) return;
    this.#reading = true;
    this.#pull().catch((error) => this.duplex.destroy(error));
  }

  async #pull(): Promise<void> {
    const buf = new Uint8Array(READ_BUFFER);
    while (this.#wanted && !this.hold && this.#unsent <= MAX_UNSENT) {
      const n = await this.#conn.read(buf);
      if (n === null) {
        this.duplex.push(null);
        return;
      }
      // The stream keeps the chunk: hand it a copy, the buffer is read into again.
      this.#wanted = this.duplex.push(Buffer.from(buf.subarray(0, n)));
    }
    this.#reading = false;
  }
}
