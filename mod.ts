/**
 * echod as a library: an RFC 862 TCP echo server to start in-process, e.g.
 * in a test suite that needs a peer which sends back what it gets.
 *
 * ```ts
 * import { serve } from "@echod/echod";
 *
 * const echod = await serve({ port: 0, hosts: ["127.0.0.1"] });
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: echod.port });
 * await conn.write(new TextEncoder().encode("ping"));
 * const reply = new Uint8Array(4);
 * await conn.read(reply); // "ping"
 * conn.close();
 * await echod.shutdown();
 * console.log(echod.stats().bytesOut); // 4
 * ```
 *
 * Needs `--allow-net` (and `--unstable-net`, set in echod's `deno.json`).
 * The command line (`main.ts`) offers more: TLS, UDP, metrics, workers.
 *
 * @module
 */

import { OptionsError } from "./lib/serve/errors.ts";
import { type FaultProfile, FaultSpecError, parseFaultSpec } from "./lib/serve/fault_spec.ts";
import { lineBreaker, unknownPlaceholder } from "./lib/serve/greeting.ts";
import { refusedTotal } from "./lib/serve/stats.ts";
import { TcpServer } from "./lib/serve/tcp_server.ts";

export {
  AddressNotLocalError,
  BindError,
  type BindTarget,
  HostsOverlapError,
  NetPermissionError,
  OptionsError,
  PortInUseError,
  PrivilegedPortError,
} from "./lib/serve/errors.ts";

/** What {@linkcode serve} can be told; `0` disables a limit. */
export interface EchodOptions {
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
   * Most connections open at once.
   * @default {10000}
   */
  maxConns?: number;
  /**
   * Most connections open at once from one address.
   * @default {64}
   */
  maxConnsPerIp?: number;
  /**
   * New connections per second allowed from one address.
   * @default {0}
   */
  acceptRate?: number;
  /**
   * Milliseconds with no byte in either direction before a connection is closed.
   * @default {300000}
   */
  idleTimeout?: number;
  /**
   * Milliseconds after which any connection is closed.
   * @default {3600000}
   */
  maxLifetime?: number;
  /**
   * A line sent to each connection before any echo (a template: `{version}`,
   * `{host}`, `{local}`, `{client}`, `{transport}`, `{via}`, `{time}`).
   * @default {undefined}
   */
  greeting?: string;
  /**
   * Misbehave on purpose on every connection: a fault profile as
   * `echod --fault` takes it, e.g. `latency=100ms,jitter=20ms`,
   * `close-after=1000` or `reset-after=1MiB,p=0.5` (TCP keys only).
   * @default {undefined}
   */
  fault?: string;
}

/** The counters of a running {@linkcode Echod}. */
export interface EchodStats {
  /** Connections accepted, admitted or not. */
  accepted: number;
  /** Connections open now. */
  active: number;
  /** Connections refused at the door (by a limit). */
  refused: number;
  /** Bytes read from peers. */
  bytesIn: number;
  /** Bytes echoed back. */
  bytesOut: number;
  /** Bytes read but not echoed because the drain closed their connection. */
  drainCut: number;
}

/** A running echo server. */
export interface Echod extends AsyncDisposable {
  /** The bound addresses: `[::]` alone where it takes IPv4 too, otherwise one per address. */
  readonly addr: readonly Deno.NetAddr[];
  /** The port every address shares (the one the OS picked, with port 0). */
  readonly port: number;
  /** The counters now. */
  stats(): EchodStats;
  /**
   * Stops accepting, gives open connections `drainTimeout` ms to finish
   * (default 10000), closes the rest, and resolves when all are closed.
   */
  shutdown(options?: { drainTimeout?: number }): Promise<void>;
  /** Resolves when a shutdown has finished. */
  readonly finished: Promise<void>;
}

/**
 * Binds and starts serving; resolves once every address listens. Rejects
 * with a {@linkcode BindError} (e.g. {@linkcode PortInUseError}) when the
 * OS refuses an address, {@linkcode HostsOverlapError}, or
 * {@linkcode OptionsError} for a greeting that is not one line or names an
 * unknown placeholder; nothing stays open then.
 */
export function serve(options: EchodOptions = {}): Promise<Echod> {
  try {
    if (options.greeting !== undefined) checkGreeting(options.greeting);
    const faults = options.fault === undefined
      ? undefined
      : [{ profile: faultProfile(options.fault) }];
    return Promise.resolve(new Handle(new TcpServer({ ...options, faults })));
  } catch (error) {
    return Promise.reject(error);
  }
}

function checkGreeting(template: string): void {
  if (lineBreaker(template) !== undefined) throw new OptionsError("greeting", "must be one line");
  const unknown = unknownPlaceholder(template);
  if (unknown !== undefined) {
    throw new OptionsError("greeting", `has an unknown placeholder {${unknown}}`);
  }
}

function faultProfile(spec: string): FaultProfile {
  let profile: FaultProfile;
  try {
    profile = parseFaultSpec(spec);
  } catch (error) {
    if (!(error instanceof FaultSpecError)) throw error;
    throw new OptionsError("fault", `'${spec}': ${error.message}`);
  }
  const udp = (["drop", "duplicate", "delay"] as const).find((key) => profile[key] !== 0);
  if (udp !== undefined) {
    throw new OptionsError(
      "fault",
      `'${spec}': ${udp} acts on UDP, which the library does not serve`,
    );
  }
  return profile;
}

class Handle implements Echod {
  readonly addr: readonly Deno.NetAddr[];
  readonly port: number;
  #server: TcpServer;
  #finished = Promise.withResolvers<void>();

  constructor(server: TcpServer) {
    this.#server = server;
    this.addr = server.addrs;
    this.port = server.port;
  }

  get finished(): Promise<void> {
    return this.#finished.promise;
  }

  stats(): EchodStats {
    const count = this.#server.stats.count;
    return {
      accepted: count.accepted,
      active: count.active,
      refused: refusedTotal(count),
      bytesIn: count.bytesIn,
      bytesOut: count.bytesOut,
      drainCut: count.drainCut,
    };
  }

  async shutdown(options: { drainTimeout?: number } = {}): Promise<void> {
    await this.#server.shutdown(options);
    this.#finished.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown({ drainTimeout: 0 });
  }
}
