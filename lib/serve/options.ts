/**
 * What a server can be told and what it gives back: the vocabulary shared
 * by the server, its workers and the command line. The defaults are in
 * `defaults.ts`.
 *
 * @module
 */

import type { SecureContext } from "node:tls";
import type { AccessListOptions, Cidr } from "./acl.ts";
import type { AdmissionOptions, Admitter } from "./admission.ts";
import type { FaultRule } from "./fault_spec.ts";
import type { BindOptions, StackMode } from "./listen.ts";
import type { StatsSource } from "./stats.ts";
import type { LogOptions } from "../log.ts";
import type { Target } from "../net.ts";

/** Everything {@linkcode serve} can be told; `0` disables a limit. */
export interface ServeOptions extends BindOptions, AdmissionOptions {
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
   * Buffers of the echo loop: the size a connection idles with, and the
   * size and number of the large buffers lent to bursts.
   * @default {{ minBuffer: 256, maxBuffer: 65024, poolBuffers: 256 }}
   */
  buffers?: { minBuffer?: number; maxBuffer?: number; poolBuffers?: number };
  /**
   * Admission to use instead of a private one, e.g. one shared by workers.
   * @default {an Admission with maxConns and maxConnsPerIp}
   */
  admission?: Admitter;
  /**
   * Who may connect (`--allow`, `--deny`).
   * @default {everyone}
   */
  access?: AccessListOptions;
  /**
   * New connections per second allowed from one address (token bucket); 0 for no limit.
   * @default {0}
   */
  acceptRate?: number;
  /**
   * Expect a PROXY protocol header (v1 or v2) from these proxies, and
   * treat the client it names as the peer.
   * @default {undefined}
   */
  proxyProtocol?: { trusted: Cidr[] };
  /**
   * Serve TLS with this certificate and key (`TlsCredentials` in
   * `tls_files.ts`): on `port` when `tls.port` is not given, otherwise on
   * `tls.port` beside plain TCP on `port`. `context` is read for each new
   * connection, so a new one (SIGHUP) serves new handshakes and leaves open
   * sessions alone. `handshakeTimeout`: milliseconds a client has to
   * complete the handshake (default 5000).
   * @default {undefined}
   */
  tls?: { context: SecureContext; port?: number; handshakeTimeout?: number };
  /**
   * Send this line (a template, see `greeting.ts`) to each connection when it
   * is admitted, before any echo.
   * @default {undefined}
   */
  greeting?: string;
  /**
   * Fault profiles (`--fault`): each for one port, or for every port when
   * its `port` is left out; one naming the port wins over one naming none.
   * Parse them with `parseFaultRule` (`fault_spec.ts`).
   * @default {[]}
   */
  faults?: FaultRule[];
  /**
   * More TCP ports, each bound on every host like `port` (TLS too when TLS
   * is served on `port`).
   * @default {[]}
   */
  ports?: number[];
}

/** How {@linkcode Server.shutdown} treats open connections. */
export interface ShutdownOptions {
  /**
   * Milliseconds open connections get to finish before they are closed.
   * A second call with 0 cuts a running drain short.
   * @default {10000}
   */
  drainTimeout?: number;
}

/** A running echo server. */
export interface Server {
  /** Bound addresses, as `[::]:40007` and `0.0.0.0:40007`. */
  readonly addresses: string[];
  /** The port all listeners share (useful with port 0); the first when there are several. */
  readonly port: number;
  /** Every plain or TLS port served, `port` first (not `tlsPort`). */
  readonly ports: number[];
  /** The TLS port, when TLS is served apart from `port`. */
  readonly tlsPort?: number;
  /** How the listeners cover IPv4 and IPv6. */
  readonly mode: StackMode;
  /** Why IPv6 is not served, when `mode` is `ipv4-only`. */
  readonly ipv6Error?: string;
  /** Live counters. */
  readonly stats: StatsSource;
  /**
   * Stops accepting, lets open connections drain, closes what is left, and
   * resolves when every connection is closed.
   */
  shutdown(options?: ShutdownOptions): Promise<void>;
}

/** Everything the `serve` command runs with. */
export interface ServeConfig {
  /** Options for the server itself. */
  server: ServeOptions;
  /** Milliseconds open connections get to finish on SIGINT/SIGTERM. */
  drainTimeout: number;
  /**
   * Milliseconds to go on accepting after the first stop signal, with
   * `/readyz` failing, so load balancers take echod out first; 0 for none.
   */
  shutdownDelay: number;
  /** Milliseconds between stats lines; 0 for none. */
  statsInterval: number;
  /** Where and how to log. */
  log: LogOptions;
  /** Worker threads, each with its own SO_REUSEPORT listener; 1 serves in the main thread. */
  workers: number;
  /** TLS certificate and key files, and the TLS port if apart from `server.port`. */
  tls?: { certFile: string; keyFile: string; port?: number; handshakeTimeout: number };
  /**
   * Where to serve /metrics, /healthz and /readyz, and whether
   * `POST /quitquitquit` there stops echod as SIGTERM does.
   */
  metrics?: Target & { quit?: boolean };
  /** UDP echo, when asked for, with its rates (per source, in all). */
  udp?: { rate: number; maxRate: number };
  /** Lines to log once logging is set up: how the configuration was read. */
  notes?: { level: "debug" | "warning"; message: string }[];
}
