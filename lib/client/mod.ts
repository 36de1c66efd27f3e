/**
 * The `client` command: stdin to the server, the echo to stdout, like `nc`
 * but present wherever echod is (Windows included).
 *
 * @module
 */

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { RuntimeError } from "../errors.ts";
import { hostPort, readLine, type Target, writeAll } from "../net.ts";
import { formatDuration } from "../units.ts";

/** Everything the `client` command runs with. */
export interface ClientConfig {
  /** Where to connect. */
  target: Target;
  /** Address family to force when `target.host` is a name. */
  family?: 4 | 6;
  /** Milliseconds to wait for the connection. */
  connectTimeout: number;
  /** The server sends a greeting line first: print it to stderr, not stdout. */
  expectGreeting?: boolean;
}

/**
 * Connects, copies stdin to the server until stdin ends, then closes its
 * writing side and prints the rest of the echo until the server closes.
 * Exit code 0, or 1 with a message when the connection fails.
 */
export async function runClient(config: ClientConfig): Promise<number> {
  const { target } = config;
  const where = hostPort(target.host, target.port);
  const hostname = await resolve(target.host, config.family, where);
  const conn = await connectWithin(hostname, target.port, config.connectTimeout, where);
  if (config.expectGreeting) {
    try {
      const { line, rest } = await readLine(conn);
      console.error(line);
      await writeAll(Deno.stdout, rest);
    } catch (error) {
      conn.close();
      throw new RuntimeError(`${where} sent no greeting line: ${(error as Error).message}`);
    }
  }
  let stdinDone = false;
  const upload = (async () => {
    for await (const chunk of Deno.stdin.readable) {
      await writeAll(conn, chunk);
    }
    stdinDone = true;
    await conn.closeWrite();
  })();
  upload.catch(() => {});
  const buf = new Uint8Array(65_536);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      await writeAll(Deno.stdout, buf.subarray(0, n));
    }
  } catch (error) {
    throw new RuntimeError(`connection to ${where} failed: ${(error as Error).message}`);
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
  if (!stdinDone) {
    throw new RuntimeError(`${where} closed the connection before the input ended`);
  }
  return 0;
}

async function resolve(host: string, family: 4 | 6 | undefined, where: string): Promise<string> {
  if (isIP(host) !== 0) return host;
  if (family === undefined) return host;
  try {
    return (await lookup(host, { family })).address;
  } catch {
    throw new RuntimeError(`cannot connect to ${where}: ${host} has no IPv${family} address`);
  }
}

async function connectWithin(
  hostname: string,
  port: number,
  timeoutMs: number,
  where: string,
): Promise<Deno.TcpConn> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connecting = Deno.connect({ hostname, port });
  try {
    return await Promise.race([
      connecting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(
            new RuntimeError(
              `cannot connect to ${where}: no answer within ${formatDuration(timeoutMs)}`,
            ),
          );
        }, timeoutMs);
      }),
    ]);
  } catch (error) {
    connecting.then((c) => c.close(), () => {});
    if (error instanceof RuntimeError) throw error;
    throw new RuntimeError(`cannot connect to ${where}: ${describe(error)}`);
  } finally {
    clearTimeout(timer);
  }
}

function describe(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) {
    return "connection refused (is a server listening there?)";
  }
  if (error instanceof Deno.errors.NotCapable) return "network permission was not granted";
  const message = (error as Error).message;
  if (/failed to lookup|name or service not known|no such host/i.test(message)) {
    return "the host name does not resolve";
  }
  return message.replace(/ \(os error \d+\)$/, "").toLowerCase();
}
