/**
 * Small socket helpers shared by every command: `host:port` text, a close
 * that does not throw, a write that writes everything, and what a socket
 * error means.
 *
 * @module
 */

/** A host and port to connect to. */
export interface Target {
  /** Host name or IP address (no brackets). */
  host: string;
  /** TCP port. */
  port: number;
}

/** `hostname:port`, with an IPv6 address in brackets: `[::1]:7`, `127.0.0.1:7`. */
export function hostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/** A listener's or peer's address as `[::1]:7` or `127.0.0.1:7`. */
export function formatAddr(addr: Deno.Addr): string {
  const { hostname, port } = addr as Deno.NetAddr;
  return hostPort(hostname, port);
}

/** Closes a connection, listener or socket that may be closed already. */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed: the peer, a limit or shutdown got there first.
  }
}

/** Whether `error` says our own socket was closed (by us): a loop on it should end. */
export function isClosed(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted;
}

/**
 * Whether `error` says the peer went away (reset, aborted, gone silent past
 * the OS's timeout): the end of one connection, not a fault of the server.
 */
export function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.TimedOut;
}

/** Something bytes can be written to in pieces: a connection, stderr, a file. */
export interface Writer {
  /** Writes some of `data`; resolves with how much. */
  write(data: Uint8Array): Promise<number>;
}

/**
 * Writes all of `data`, however many writes it takes, adding what each
 * write took to `tally.bytesOut` when given (so after a failure it says
 * how much went). The echo loop (`serve/pump.ts`) has its own copy inline:
 * a call here would add an async frame to every chunk.
 */
export async function writeAll(
  to: Writer,
  data: Uint8Array,
  tally?: { bytesOut: number },
): Promise<void> {
  for (let sent = 0; sent < data.length;) {
    const wrote = await to.write(data.subarray(sent));
    sent += wrote;
    if (tally !== undefined) tally.bytesOut += wrote;
  }
}

/**
 * Reads one line (a server's greeting) of at most `max` bytes: the line
 * without its newline, and any bytes that came after it. Rejects when the
 * peer closes first or the line is longer.
 */
export async function readLine(
  conn: Deno.Conn,
  max = 4096,
): Promise<{ line: string; rest: Uint8Array }> {
  const buf = new Uint8Array(max);
  let have = 0;
  for (;;) {
    const n = await conn.read(buf.subarray(have));
    if (n === null) throw new Deno.errors.UnexpectedEof("closed before the end of the first line");
    const end = buf.subarray(have, have + n).indexOf(10);
    have += n;
    if (end !== -1) {
      const at = have - n + end;
      return { line: new TextDecoder().decode(buf.subarray(0, at)), rest: buf.slice(at + 1, have) };
    }
    if (have === max) throw new Deno.errors.InvalidData(`no newline in the first ${max} bytes`);
  }
}
