/**
 * Binding: opens the TCP listeners for the addresses asked for, or by
 * default for every IPv6 and IPv4 address at once, and turns the OS's
 * refusals into messages a user can act on.
 *
 * @module
 */

import { DEFAULT_PORT } from "./defaults.ts";
import {
  AddressNotLocalError,
  BindError,
  type BindTarget,
  HostsOverlapError,
  NetPermissionError,
  PortInUseError,
  PrivilegedPortError,
} from "./errors.ts";

/** What to bind. */
export interface BindOptions {
  /**
   * Addresses to listen on, exactly. Empty: every IPv6 and IPv4 address.
   * @default {[]}
   */
  hosts?: string[];
  /**
   * TCP port; 0 lets the OS pick one, which every listener then shares.
   * @default {40007}
   */
  port?: number;
  /**
   * Set SO_REUSEPORT, so that several workers can each bind the same
   * address and the kernel spreads connections over them (Linux).
   * @default {false}
   */
  reusePort?: boolean;
}

/** How the default, all-addresses binding came out on this host. */
export type StackMode =
  /** `::` also accepts IPv4 (Linux, macOS): one listener serves both. */
  | "dual-stack"
  /** `::` is IPv6-only (Windows, `bindv6only=1`): a second listener on `0.0.0.0`. */
  | "two-listeners"
  /** The host has no IPv6: `0.0.0.0` alone. */
  | "ipv4-only"
  /** `--host` was given: exactly those addresses. */
  | "explicit";

/** Open sockets (TCP listeners by default) and how they came to be. */
export interface Binding<T = Deno.Listener> {
  /** One socket per bound address. */
  listeners: T[];
  /** The port every listener is bound to. */
  port: number;
  /** How the addresses were chosen. */
  mode: StackMode;
  /** Why IPv6 could not be used, when `mode` is `ipv4-only`. */
  ipv6Error?: string;
}

/**
 * Opens the listeners. Throws a {@linkcode BindError} when the OS refuses
 * (its subclasses name the common reasons: {@linkcode PortInUseError},
 * {@linkcode PrivilegedPortError}, {@linkcode AddressNotLocalError},
 * {@linkcode NetPermissionError}) and {@linkcode HostsOverlapError} when
 * two of `hosts` overlap; in any case nothing stays open.
 */
export function bind(options: BindOptions = {}): Binding {
  const port = options.port ?? DEFAULT_PORT;
  const hosts = options.hosts ?? [];
  const reusePort = options.reusePort ?? false;
  return bindSockets(hosts, port, (hostname, at) => open(hostname, at, reusePort));
}

/**
 * Binds one socket per address in `hosts`, or when `hosts` is empty, every
 * IPv6 and IPv4 address: `::` first, then `0.0.0.0` on the same port unless
 * `::` already takes IPv4, or `0.0.0.0` alone where the host has no IPv6.
 * `open` must throw a {@linkcode BindError} whose `cause` is the OS error.
 * Shared by TCP and UDP; nothing stays open when it throws.
 */
export function bindSockets<T extends { addr: Deno.Addr; close(): void }>(
  hosts: string[],
  port: number,
  open: (hostname: string, port: number) => T,
): Binding<T> {
  // Both wildcards are what binding every address means, on any OS.
  const everything = hosts.length === 2 && hosts.includes("::") && hosts.includes("0.0.0.0");
  return hosts.length > 0 && !everything ? bindExactly(hosts, port, open) : bindAll(port, open);
}

function bindExactly<T extends { addr: Deno.Addr; close(): void }>(
  hosts: string[],
  port: number,
  open: (hostname: string, port: number) => T,
): Binding<T> {
  const listeners: T[] = [];
  try {
    for (const hostname of hosts) {
      // With port 0, the first listener picks the port and the rest share it.
      const shared = listeners.length > 0 ? portOf(listeners[0]) : port;
      try {
        listeners.push(open(hostname, shared));
      } catch (error) {
        throw overlap(error, hostname, hosts.slice(0, listeners.length)) ?? error;
      }
    }
  } catch (error) {
    for (const listener of listeners) listener.close();
    throw error;
  }
  return { listeners, port: portOf(listeners[0]), mode: "explicit" };
}

function bindAll<T extends { addr: Deno.Addr; close(): void }>(
  port: number,
  open: (hostname: string, port: number) => T,
): Binding<T> {
  let v6: T;
  try {
    v6 = open("::", port);
  } catch (error) {
    if (!isNoIpv6(error)) throw error;
    const v4 = open("0.0.0.0", port);
    return {
      listeners: [v4],
      port: portOf(v4),
      mode: "ipv4-only",
      ipv6Error: (error as Error).message,
    };
  }
  try {
    const v4 = open("0.0.0.0", portOf(v6));
    return { listeners: [v6, v4], port: portOf(v6), mode: "two-listeners" };
  } catch (error) {
    // The port is taken for IPv4 by our own `::` socket, which accepts IPv4
    // (Linux, macOS). On Windows `::` is IPv6-only: there the IPv4 port is
    // another program's, and echod must say so rather than serve IPv6 alone.
    if (
      Deno.build.os !== "windows" && error instanceof PortInUseError
    ) {
      return { listeners: [v6], port: portOf(v6), mode: "dual-stack" };
    }
    v6.close();
    throw error;
  }
}

/**
 * A clearer error when `hostname` could not be bound because one of our own
 * sockets already takes it: `::` also takes IPv4 where the OS is dual-stack.
 */
function overlap(error: unknown, hostname: string, bound: string[]): Error | undefined {
  if (!(error instanceof PortInUseError)) return undefined;
  const v4 = !hostname.includes(":");
  const wildcard = bound.includes("::") && v4
    ? "::"
    : hostname === "::"
    ? bound.find((h) => !h.includes(":"))
    : undefined;
  if (wildcard === undefined) return undefined;
  return new HostsOverlapError(hostname === "::" ? wildcard : hostname, { cause: error });
}

function open(hostname: string, port: number, reusePort: boolean): Deno.Listener {
  try {
    return Deno.listen({ hostname, port, transport: "tcp", reusePort });
  } catch (error) {
    throw explain(error, { hostname, port, transport: "tcp" });
  }
}

/** The typed error for the OS's refusal to bind `target`. Shared by TCP and UDP. */
export function explain(error: unknown, target: BindTarget): BindError {
  const cause = { cause: error };
  if (error instanceof Deno.errors.NotCapable) return new NetPermissionError(target, cause);
  if (error instanceof Deno.errors.AddrInUse) return new PortInUseError(target, cause);
  if (error instanceof Deno.errors.PermissionDenied && target.port < 1024) {
    return new PrivilegedPortError(target, cause);
  }
  if (error instanceof Deno.errors.AddrNotAvailable) return new AddressNotLocalError(target, cause);
  return new BindError(target, cause);
}

function isNoIpv6(error: unknown): boolean {
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause instanceof Deno.errors.AddrNotAvailable) return true;
  const code = (cause as { code?: string } | undefined)?.code;
  return code === "EAFNOSUPPORT" || code === "EPROTONOSUPPORT" ||
    /address family not supported/i.test(String((cause as Error)?.message));
}

function portOf(listener: { addr: Deno.Addr }): number {
  return (listener.addr as Deno.NetAddr).port;
}

/**
 * Binds each of `ports` with `bindOne`, in order; when one fails, closes
 * what the others opened and rethrows. Shared by TCP and UDP.
 */
export function bindPorts<P, T extends { close(): void }>(
  ports: P[],
  bindOne: (port: P) => Binding<T>,
): Binding<T>[] {
  const bindings: Binding<T>[] = [];
  try {
    for (const port of ports) bindings.push(bindOne(port));
  } catch (error) {
    for (const binding of bindings) for (const socket of binding.listeners) socket.close();
    throw error;
  }
  return bindings;
}

/**
 * The listeners: `port` and each of `ports`, and `tls.port` when TLS is
 * served apart; which of them are TLS. Nothing stays open when one fails.
 */
export function bindListeners(
  options: BindOptions & { ports?: number[]; tls?: { port?: number } },
): {
  main: Binding;
  ports: number[];
  apart?: Binding;
  listeners: Deno.Listener[];
  tls: Set<Deno.Listener>;
} {
  const ports = [options.port, ...(options.ports ?? [])];
  if (options.tls?.port !== undefined) ports.push(options.tls.port);
  const bindings = bindPorts(ports, (port) => bind({ ...options, port }));
  const apart = options.tls?.port !== undefined ? bindings.pop() : undefined;
  const plain = bindings.flatMap((b) => b.listeners);
  const tls = new Set(options.tls ? (apart?.listeners ?? plain) : []);
  return {
    main: bindings[0],
    ports: bindings.map((b) => b.port),
    apart,
    listeners: [...plain, ...(apart?.listeners ?? [])],
    tls,
  };
}
