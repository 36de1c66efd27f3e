/**
 * Small socket helpers shared by every command: `host:port` text, a close
 * that does not throw, and a write that writes everything.
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

/** Something bytes can be written to in pieces: a connection, stderr, a file. */
export interface Writer {
  /** Writes some of `data`; resolves with how much. */
  write(data: Uint8Array): Promise<number>;
}

/** Writes all of `data`, however many writes it takes. */
export async function writeAll(to: Writer, data: Uint8Array): Promise<void> {
  for (let sent = 0; sent < data.length;) sent += await to.write(data.subarray(sent));
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
