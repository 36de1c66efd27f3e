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
