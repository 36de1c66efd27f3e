/**
 * The accept loop. Unlike `for await (const conn of listener)`, which ends
 * for good on the first failed accept (descriptor exhaustion, say), it
 * retries every failure, backing off while the failures last.
 *
 * @module
 */

import { isClosed, isDisconnect } from "../net.ts";

/** Backoff and error reporting for {@linkcode acceptLoop}. */
export interface AcceptLoopOptions {
  /**
   * Called for each failed accept with the delay before the next try; 0
   * means the failure belonged to one connection (its peer gave up or reset
   * before it was taken) and the loop went straight on.
   */
  onError: (error: Error, retryInMs: number) => void;
  /**
   * First delay after a failure that is not specific to one connection, in ms.
   * @default {5}
   */
  minBackoff?: number;
  /**
   * Longest delay between tries, in ms.
   * @default {1000}
   */
  maxBackoff?: number;
}

/**
 * Accepts connections from `listener` and hands each to `onConn` until the
 * listener is closed; then resolves.
 */
export async function acceptLoop(
  listener: Deno.Listener,
  onConn: (conn: Deno.Conn) => void,
  options: AcceptLoopOptions,
): Promise<void> {
  const minBackoff = options.minBackoff ?? 5;
  const maxBackoff = options.maxBackoff ?? 1_000;
  let backoff = 0;
  for (;;) {
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch (error) {
      if (isClosed(error)) return;
      if (isDisconnect(error)) {
        // The connection died between the handshake and accept() or the
        // address lookup that follows it (ENOTCONN from getpeername after a
        // reset): only it is lost, and the next one may be waiting.
        options.onError(error as Error, 0);
        continue;
      }
      backoff = backoff === 0 ? minBackoff : Math.min(backoff * 2, maxBackoff);
      options.onError(error as Error, backoff);
      await delay(backoff);
      continue;
    }
    backoff = 0;
    onConn(conn);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
