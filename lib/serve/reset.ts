/**
 * Ending a connection with a TCP reset, as far as Deno allows.
 *
 * `Deno.Conn` has no way to send an RST: no SO_LINGER, and its `close()`
 * always shuts the writing side down first, which sends a FIN. Deno's Node
 * layer can set SO_LINGER to 0 on the socket under a `Deno.Conn` (its TCP
 * handle duplicates the descriptor from the connection's resource and
 * `reset()` sets the option on it), so the close that follows sends an RST
 * instead of waiting: the peer gets a FIN and, right behind it, an RST.
 * It reads every byte echoed, then end-of-stream; its next write fails
 * (EPIPE or ECONNRESET), where after a clean close it would succeed.
 * Where that handle is missing, the close alone still resets when the
 * peer has sent bytes echod has not read (which a cut leaves unread).
 *
 * @module
 */

import process from "node:process";
import { closeQuietly } from "../net.ts";

interface TcpHandle {
  openFromRid(rid: number): number;
  reset(done: () => void): number;
}

type TcpHandleClass = new (type: number) => TcpHandle;

let handleClass: TcpHandleClass | null | undefined;

/** Deno's Node TCP handle, or `null` where this Deno has none. */
function tcpHandle(): TcpHandleClass | null {
  if (handleClass !== undefined) return handleClass;
  try {
    // deno-lint-ignore no-explicit-any
    const binding = (process as any).binding("tcp_wrap");
    handleClass = typeof binding?.TCP?.prototype?.openFromRid === "function" &&
        typeof binding.TCP.prototype.reset === "function"
      ? binding.TCP
      : null;
  } catch {
    handleClass = null;
  }
  return handleClass ?? null;
}

/** The resource id of a `Deno.Conn`, which Deno keeps behind an internal symbol. */
function ridOf(conn: Deno.Conn): number | undefined {
  // deno-lint-ignore no-explicit-any
  const internal = (Deno as any)[(Deno as any).internal]?.core?.internalRidSymbol;
  // deno-lint-ignore no-explicit-any
  const rid = internal === undefined ? undefined : (conn as any)[internal];
  return typeof rid === "number" ? rid : undefined;
}

/**
 * Closes `conn` so that the peer sees a reset (see the module notes for
 * exactly what it sees). Returns whether SO_LINGER 0 could be set; the
 * connection is closed either way.
 */
export function resetConn(conn: Deno.Conn): boolean {
  let lingered = false;
  const Handle = tcpHandle();
  const rid = ridOf(conn);
  if (Handle !== null && rid !== undefined) {
    try {
      const handle = new Handle(0);
      lingered = handle.openFromRid(rid) === 0 && handle.reset(() => {}) === 0;
    } catch {
      lingered = false;
    }
  }
  closeQuietly(conn);
  return lingered;
}
