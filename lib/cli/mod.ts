/**
 * The command line: `echod [serve] [options]`, `echod client HOST:PORT`,
 * `echod bench HOST:PORT`, `--help` and `--version`. Parsing turns argv
 * into a {@linkcode Command} or throws {@linkcode UsageError} with one line
 * that says what was wrong and what to do. Nothing here reads the
 * environment or the file system.
 *
 * @module
 */

import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { type Cidr, parseCidr } from "../serve/acl.ts";
import { canonicalIp } from "../ip.ts";
import { DEFAULT_MAX_CONNS, DEFAULT_MAX_CONNS_PER_IP } from "../serve/admission.ts";
import type { BenchMode } from "../bench/runner.ts";
import { UsageError } from "../errors.ts";
import { DEFAULT_PORT } from "../serve/listen.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogOptions } from "../log.ts";
import {
  DEFAULT_DRAIN_TIMEOUT,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_MAX_LIFETIME,
  DEFAULT_TLS_HANDSHAKE_TIMEOUT,
  type ServeOptions,
} from "../serve/server.ts";
import { hostServiceKind, SERVICE_KINDS, type ServiceKind } from "../service/definitions.ts";
import { DEFAULT_STATS_INTERVAL } from "../serve/stats.ts";
import { DEFAULT_UDP_MAX_RATE, DEFAULT_UDP_RATE } from "../serve/udp.ts";
import { formatDuration, MAX_DURATION, parseDuration, parseSize } from "../units.ts";

/** Everything the `serve` command runs with. */
export interface ServeConfig {
  /** Options for the server itself. */
  server: ServeOptions;
  /** Milliseconds open connections get to finish on SIGINT/SIGTERM. */
  drainTimeout: number;
  /** Milliseconds between stats lines; 0 for none. */
  statsInterval: number;
  /** Where and how to log. */
  log: LogOptions;
  /** Worker threads, each with its own SO_REUSEPORT listener; 1 serves in the main thread. */
  workers: number;
  /** TLS certificate and key files, and the TLS port if apart from `server.port`. */
  tls?: { certFile: string; keyFile: string; port?: number; handshakeTimeout: number };
  /** Where to serve /metrics and /healthz. */
  metrics?: Target;
  /** UDP echo, when asked for, with its rates (per source, in all). */
  udp?: { rate: number; maxRate: number };
}

/** A host and port to connect to. */
export interface Target {
  /** Host name or IP address (no brackets). */
  host: string;
  /** TCP port. */
  port: number;
}

/** Everything the `client` command runs with. */
export interface ClientConfig {
  /** Where to connect. */
  target: Target;
  /** Address family to force when `target.host` is a name. */
  family?: 4 | 6;
  /** Milliseconds to wait for the connection. */
  connectTimeout: number;
}

/** Everything the `bench` command runs with. */
export interface BenchConfig {
  /** Where to send load. */
  target: Target;
  /** What to measure. */
  mode: BenchMode;
  /** Concurrent connections. */
  connections: number;
  /** Message (rr) or write (stream) size in bytes. */
  size: number;
  /** Stream mode: bytes in flight per connection. */
  window: number;
  /** Milliseconds to measure. */
  duration: number;
  /** Messages or connections to complete instead of a duration; 0 for none. */
  count: number;
  /** Open-loop rate per second; 0 for closed loop. */
  rate: number;
  /** Milliseconds of warm-up. */
  warmup: number;
  /** Web Workers to spread the connections over. */
  workers: number;
  /** Milliseconds to wait for each connection. */
  connectTimeout: number;
  /** Print the report as JSON. */
  json: boolean;
  /** Write an HTML report to this file. */
  html?: string;
}

/** What `echod service` can do. */
export type ServiceAction = "install" | "uninstall" | "status" | "print";

/** Everything the `service` command runs with. */
export interface ServiceConfig {
  /** What to do. */
  action: ServiceAction;
  /** Which service manager (for `print`, any; otherwise this host's). */
  kind: ServiceKind;
  /** The serve options the service runs with, as given after `--`. */
  serveArgs: string[];
  /** Those options, parsed. */
  serve: ServeConfig;
  /** systemd only: install into this root directory instead of the running system. */
  root?: string;
}

/** What the command line asks for. */
export type Command =
  | { kind: "help"; text: string }
  | { kind: "version" }
  | { kind: "serve"; config: ServeConfig }
  | { kind: "client"; config: ClientConfig }
  | { kind: "bench"; config: BenchConfig }
  | { kind: "service"; config: ServiceConfig };

interface OptionSpec {
  name: string;
  kind: "string" | "boolean";
  short?: string;
  value?: string;
  multiple?: boolean;
  help: string;
}

type CommandName = "serve" | "client" | "bench" | "service";

interface CommandSpec {
  name: CommandName;
  summary: string;
  usage: string;
  target: boolean;
  options: OptionSpec[];
  examples: string[];
}

const HELP: OptionSpec = {
  name: "help",
  kind: "boolean",
  short: "h",
  help: "show this help and exit",
};

const CONNECT_TIMEOUT: OptionSpec = {
  name: "connect-timeout",
  kind: "string",
  value: "DURATION",
  help: "give up on a connection not open after this long (default: 5s)",
};

const SERVE: CommandSpec = {
  name: "serve",
  summary: "run the echo server (the default command)",
  usage: "echod [serve] [options]",
  target: false,
  options: [
    {
      name: "host",
      kind: "string",
      value: "ADDR",
      multiple: true,
      help: "listen on this IP address only; repeat for more (default: all IPv6 and IPv4)",
    },
    {
      name: "port",
      kind: "string",
      short: "p",
      value: "PORT",
      help: `TCP port, 0 to let the OS pick (default: ${DEFAULT_PORT})`,
    },
    {
      name: "max-conns",
      kind: "string",
      value: "N",
      help: `most connections open at once, 0 for no limit (default: ${DEFAULT_MAX_CONNS})`,
    },
    {
      name: "max-conns-per-ip",
      kind: "string",
      value: "N",
      help:
        `most connections from one address, 0 for no limit (default: ${DEFAULT_MAX_CONNS_PER_IP})`,
    },
    {
      name: "idle-timeout",
      kind: "string",
      value: "DURATION",
      help: `close a connection with no traffic for this long, 0 for never (default: ${
        formatDuration(DEFAULT_IDLE_TIMEOUT)
      })`,
    },
    {
      name: "max-lifetime",
      kind: "string",
      value: "DURATION",
      help: `close any connection after this long, 0 for never (default: ${
        formatDuration(DEFAULT_MAX_LIFETIME)
      })`,
    },
    {
      name: "drain-timeout",
      kind: "string",
      value: "DURATION",
      help: `on SIGINT/SIGTERM, wait this long for connections to finish (default: ${
        formatDuration(DEFAULT_DRAIN_TIMEOUT)
      })`,
    },
    {
      name: "stats-interval",
      kind: "string",
      value: "DURATION",
      help: `log a stats line this often, 0 for never (default: ${
        formatDuration(DEFAULT_STATS_INTERVAL)
      })`,
    },
    {
      name: "log-level",
      kind: "string",
      value: "LEVEL",
      help: `${LOG_LEVELS.join(", ")} (default: info)`,
    },
    {
      name: "log-format",
      kind: "string",
      value: "FORMAT",
      help: "text, or json for JSON Lines (default: text)",
    },
    {
      name: "log-file",
      kind: "string",
      value: "PATH",
      help: "append the log to this file instead of stderr (needs --allow-write=PATH)",
    },
    {
      name: "workers",
      kind: "string",
      short: "w",
      value: "N",
      help: "serve from N threads sharing the port, Linux only (default: 1)",
    },
    {
      name: "allow",
      kind: "string",
      value: "CIDR",
      multiple: true,
      help: "only these addresses may connect (TCP and UDP); repeatable",
    },
    {
      name: "deny",
      kind: "string",
      value: "CIDR",
      multiple: true,
      help: "these addresses may not connect, whatever --allow says; repeatable",
    },
    {
      name: "accept-rate",
      kind: "string",
      value: "N",
      help: "new connections per second from one address, 0 for no limit (default: 0)",
    },
    {
      name: "proxy-protocol",
      kind: "boolean",
      help: "expect a PROXY v1/v2 header from --trusted-proxy addresses",
    },
    {
      name: "trusted-proxy",
      kind: "string",
      value: "CIDR",
      multiple: true,
      help: "a load balancer whose PROXY header names the real client; repeatable",
    },
    {
      name: "tls-cert",
      kind: "string",
      value: "FILE",
      help: "serve TLS with this PEM certificate chain (needs --allow-read=FILE)",
    },
    { name: "tls-key", kind: "string", value: "FILE", help: "the PEM private key for --tls-cert" },
    {
      name: "tls-port",
      kind: "string",
      value: "PORT",
      help: "serve TLS on this port and plain TCP on --port (default: TLS on --port)",
    },
    {
      name: "tls-handshake-timeout",
      kind: "string",
      value: "DURATION",
      help: `close a TLS connection whose handshake is not done by then (default: ${
        formatDuration(DEFAULT_TLS_HANDSHAKE_TIMEOUT)
      })`,
    },
    {
      name: "metrics",
      kind: "string",
      value: "[ADDR:]PORT",
      help: "serve Prometheus /metrics and /healthz here (default: off; ADDR: 127.0.0.1)",
    },
    { name: "udp", kind: "boolean", help: "also serve UDP echo on the same port (off by default)" },
    {
      name: "udp-rate",
      kind: "string",
      value: "N",
      help: `UDP datagrams answered per second per source (default: ${DEFAULT_UDP_RATE})`,
    },
    {
      name: "udp-max-rate",
      kind: "string",
      value: "N",
      help: `UDP datagrams answered per second in all (default: ${DEFAULT_UDP_MAX_RATE})`,
    },
    HELP,
    { name: "version", kind: "boolean", short: "V", help: "show the version and exit" },
  ],
  examples: [
    "echod                              serve on port 40007, all addresses",
    "echod --port 7007 --host ::1       serve on ::1 only",
    "echod --log-level debug --log-format json",
  ],
};

const CLIENT: CommandSpec = {
  name: "client",
  summary: "send stdin to an echo server and print what comes back",
  usage: "echod client HOST:PORT [options]",
  target: true,
  options: [
    { name: "ipv4", kind: "boolean", short: "4", help: "connect over IPv4 only" },
    { name: "ipv6", kind: "boolean", short: "6", help: "connect over IPv6 only" },
    CONNECT_TIMEOUT,
    HELP,
  ],
  examples: [
    "echod client 127.0.0.1:40007",
    "echo hello | echod client [::1]:40007",
  ],
};

const BENCH: CommandSpec = {
  name: "bench",
  summary: "load any TCP echo server and verify every byte it echoes",
  usage: "echod bench HOST:PORT [options]",
  target: true,
  options: [
    {
      name: "mode",
      kind: "string",
      short: "m",
      value: "MODE",
      help: "rr (request/response), stream (throughput), connect (open/echo/close), " +
        "hold (keep connections open) (default: rr)",
    },
    {
      name: "connections",
      kind: "string",
      short: "c",
      value: "N",
      help: "concurrent connections (default: 50)",
    },
    {
      name: "size",
      kind: "string",
      short: "s",
      value: "BYTES",
      help: "message size for rr, write size for stream (default: 512; stream: 64KiB)",
    },
    {
      name: "window",
      kind: "string",
      value: "BYTES",
      help: "stream: bytes in flight per connection (default: 256KiB)",
    },
    {
      name: "duration",
      kind: "string",
      short: "d",
      value: "DURATION",
      help: "how long to measure; hold: how long to hold (default: 10s)",
    },
    {
      name: "count",
      kind: "string",
      short: "n",
      value: "N",
      help: "stop after N messages (rr) or connections (connect) instead",
    },
    {
      name: "rate",
      kind: "string",
      value: "N",
      help: "open loop: N messages (rr) or connections (connect) per second in total",
    },
    {
      name: "warmup",
      kind: "string",
      value: "DURATION",
      help: "load before measuring starts (default: 1s)",
    },
    {
      name: "workers",
      kind: "string",
      short: "w",
      value: "N",
      help: "spread the connections over N threads (default: 1)",
    },
    CONNECT_TIMEOUT,
    { name: "json", kind: "boolean", help: "print the report as JSON" },
    {
      name: "html",
      kind: "string",
      value: "FILE",
      help: "also write a self-contained HTML report with a latency chart",
    },
    HELP,
  ],
  examples: [
    "echod bench 127.0.0.1:40007",
    "echod bench [::1]:40007 --mode stream -c 8 -d 5s",
    "echod bench 127.0.0.1:7 --rate 10000 --json",
  ],
};

const SERVICE: CommandSpec = {
  name: "service",
  summary: "install echod as a system service (systemd, launchd, Windows task)",
  usage:
    "echod service install|uninstall|status|print [systemd|launchd|windows] [-- SERVE OPTIONS]",
  target: false,
  options: [
    {
      name: "root",
      kind: "string",
      value: "DIR",
      help: "systemd: install into this root file system (an image) instead of the running system",
    },
    HELP,
  ],
  examples: [
    "sudo echod service install -- --port 7007 --max-conns 20000",
    "echod service print launchd -- --port 7007",
    "sudo echod service status",
    "sudo echod service uninstall",
  ],
};

const COMMANDS: CommandSpec[] = [SERVE, CLIENT, BENCH, SERVICE];
const SERVICE_ACTIONS: readonly ServiceAction[] = ["install", "uninstall", "status", "print"];
const BENCH_MODES: readonly BenchMode[] = ["rr", "stream", "connect", "hold"];
const COMMAND_NAMES = [...COMMANDS.map((c) => c.name), "help"];

/** The text `echod --help` (or `echod COMMAND --help`) prints. */
export function helpText(command: CommandName = "serve"): string {
  const spec = COMMANDS.find((c) => c.name === command)!;
  const width = Math.max(...spec.options.map((o) => optionLabel(o).length));
  const lines = spec.options.map((o) => `  ${optionLabel(o).padEnd(width)}  ${o.help}`);
  const header = command === "serve"
    ? [
      "echod: TCP echo server (RFC 862) on IPv6 and IPv4",
      "",
      "Usage:",
      "  echod [serve] [options]          run the server",
      "  echod client HOST:PORT [options] interactive client (like nc)",
      "  echod bench HOST:PORT [options]  load generator (see echod bench --help)",
      "  echod service ACTION [KIND]      install as a service (see echod service --help)",
    ]
    : [`echod ${spec.name}: ${spec.summary}`, "", "Usage:", `  ${spec.usage}`];
  const footer = {
    serve:
      "Durations: 500ms, 30s, 10m, 1h. Stop with SIGINT or SIGTERM; a second signal stops at once.",
    client: "Durations: 500ms, 30s, 10m, 1h.",
    bench: "Durations: 500ms, 30s, 10m, 1h. Sizes: 512, 64KiB, 1MiB.",
    service:
      "install, uninstall and status need root (sudo) or Administrator; print needs nothing.",
  }[command];
  return [
    ...header,
    "",
    "Options:",
    ...lines,
    "",
    footer,
    "",
    "Examples:",
    ...spec.examples.map((e) => `  ${e}`),
    "",
  ].join("\n");
}

/**
 * Parses `args` (without the program name). Throws {@linkcode UsageError}
 * for anything that cannot be run as written.
 */
export function parseCommandLine(args: string[]): Command {
  let spec = SERVE;
  let rest = args;
  const first = args[0];
  if (first !== undefined && !first.startsWith("-")) {
    if (first === "help") {
      const topic = COMMANDS.find((c) => c.name === args[1]);
      return { kind: "help", text: helpText(topic?.name) };
    }
    const named = COMMANDS.find((c) => c.name === first);
    if (named === undefined) {
      const near = hint(first, COMMAND_NAMES, "");
      throw new UsageError(
        `unknown command '${first}'${near || `: commands are ${COMMAND_NAMES.join(", ")}`}`,
      );
    }
    spec = named;
    rest = args.slice(1);
  }
  // Service: what follows `--` are the serve options the service runs with.
  let serveArgs: string[] = [];
  if (spec === SERVICE) {
    const cut = rest.indexOf("--");
    if (cut !== -1) {
      serveArgs = rest.slice(cut + 1);
      rest = rest.slice(0, cut);
    }
  }
  const { values, positionals } = readOptions(rest, spec);
  if (values.has("help")) return { kind: "help", text: helpText(spec.name) };
  if (values.has("version")) return { kind: "version" };
  const opts = new OptionValues(values);
  switch (spec.name) {
    case "serve":
      if (positionals.length > 0) {
        throw new UsageError(`unexpected argument '${positionals[0]}': options start with --`);
      }
      return { kind: "serve", config: serveConfig(opts) };
    case "client":
      return { kind: "client", config: clientConfig(oneTarget(spec, positionals), opts) };
    case "bench":
      return { kind: "bench", config: benchConfig(oneTarget(spec, positionals), opts) };
    case "service":
      return { kind: "service", config: serviceConfig(positionals, serveArgs, opts) };
  }
}

function readOptions(
  args: string[],
  spec: CommandSpec,
): { values: Map<string, string[]>; positionals: string[] } {
  const { tokens } = parseArgs({
    args,
    options: Object.fromEntries(spec.options.map((o) => [o.name, parseArgsSpec(o)])),
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const values = new Map<string, string[]>();
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === "positional") {
      positionals.push(token.value);
      continue;
    }
    if (token.kind !== "option") {
      throw new UsageError(`'--' is not used by echod ${spec.name}`);
    }
    const option = spec.options.find((o) => o.name === token.name);
    if (option === undefined) {
      const elsewhere = COMMANDS.find((c) =>
        c !== spec && c.options.some((o) => o.name === token.name)
      );
      const where = elsewhere ? ` (it belongs to echod ${elsewhere.name})` : "";
      const near = hint(token.name, spec.options.map((o) => o.name), "--");
      throw new UsageError(`unknown option ${token.rawName}${where || near}`);
    }
    if (option.kind === "boolean") {
      if (token.value !== undefined) throw new UsageError(`--${option.name} takes no value`);
      values.set(option.name, ["true"]);
      continue;
    }
    if (token.value === undefined) {
      throw new UsageError(`--${option.name} needs a value (--${option.name} ${option.value})`);
    }
    values.set(option.name, [...(values.get(option.name) ?? []), token.value]);
  }
  return { values, positionals };
}

/** Typed access to option values, each with the error message for a bad one. */
class OptionValues {
  #values: Map<string, string[]>;

  constructor(values: Map<string, string[]>) {
    this.#values = values;
  }

  all(name: string): string[] {
    return this.#values.get(name) ?? [];
  }

  last(name: string): string | undefined {
    return this.#values.get(name)?.at(-1);
  }

  has(name: string): boolean {
    return this.#values.has(name);
  }

  count(name: string, fallback: number, min = 0): number {
    const text = this.last(name);
    if (text === undefined) return fallback;
    if (/^-\d+$/.test(text)) {
      throw new UsageError(
        `--${name} must not be negative (got ${text})${min === 0 ? "; 0 means no limit" : ""}`,
      );
    }
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
      throw new UsageError(
        `--${name} '${text}' is not a whole number${min === 0 ? "; 0 means no limit" : ""}`,
      );
    }
    const n = Number(text);
    if (n < min) throw new UsageError(`--${name} must be at least ${min} (got ${text})`);
    return n;
  }

  /**
   * A duration in milliseconds: 0 (off), or from `min` up to the longest
   * timer the runtime can set (596h); anything else is refused with the range.
   */
  time(name: string, fallback: number, min = 1): number {
    const text = this.last(name);
    if (text === undefined) return fallback;
    if (text.startsWith("-")) {
      throw new UsageError(`--${name} must not be negative (got ${text})`);
    }
    const ms = parseDuration(text);
    if (ms === undefined) {
      const unitless = /^\d+(\.\d+)?$/.test(text) ? ` (a number needs a unit: ${text}s?)` : "";
      throw new UsageError(
        `--${name} '${text}' is not a duration${unitless}: use e.g. 500ms, 30s, 10m, 1h, or 0`,
      );
    }
    const zero = /^0+(\.0+)?[a-z]*$/.test(text);
    if ((ms === 0 && !zero) || (ms > 0 && ms < min) || ms > MAX_DURATION) {
      throw new UsageError(
        `--${name} ${text} is out of range (0, or ${formatDuration(min)} to ${
          formatDuration(MAX_DURATION)
        })`,
      );
    }
    return ms;
  }

  size(name: string, fallback: number): number {
    const text = this.last(name);
    if (text === undefined) return fallback;
    const bytes = parseSize(text);
    if (bytes === undefined || bytes < 1) {
      throw new UsageError(`--${name} '${text}' is not a size: use e.g. 512, 64KiB, 1MiB`);
    }
    return bytes;
  }

  choice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const text = this.last(name);
    if (text === undefined) return fallback;
    if ((choices as readonly string[]).includes(text)) return text as T;
    throw new UsageError(
      `--${name} '${text}' is not one of ${choices.join(", ")}${hint(text, choices, "")}`,
    );
  }

  path(name: string): string | undefined {
    const text = this.last(name);
    if (text === "") throw new UsageError(`--${name} needs a path`);
    return text;
  }
}

function serveConfig(opts: OptionValues): ServeConfig {
  const hosts = parseHosts(opts.all("host"));
  const port = opts.last("port");
  const mainPort = port === undefined ? DEFAULT_PORT : parsePort(port, "port");
  const allow = opts.all("allow").map((text) => parseBlock("allow", text));
  const deny = opts.all("deny").map((text) => parseBlock("deny", text));
  const trusted = opts.all("trusted-proxy").map((text) => parseBlock("trusted-proxy", text));
  if (opts.has("proxy-protocol") && trusted.length === 0) {
    throw new UsageError(
      "--proxy-protocol needs at least one --trusted-proxy CIDR (your load balancers' addresses)",
    );
  }
  if (!opts.has("proxy-protocol") && trusted.length > 0) {
    throw new UsageError("--trusted-proxy needs --proxy-protocol");
  }
  const workers = opts.count("workers", 1, 1);
  if (workers > 1 && opts.has("tls-cert")) {
    // Deno's TLS listener does not set SO_REUSEPORT: workers cannot share its port.
    throw new UsageError("--workers cannot serve TLS (--tls-cert): run one process for TLS");
  }
  for (const name of ["udp-rate", "udp-max-rate"]) {
    if (opts.has(name) && !opts.has("udp")) throw new UsageError(`--${name} needs --udp`);
  }
  return {
    tls: tlsConfig(opts, mainPort),
    metrics: opts.has("metrics") ? parseMetricsTarget(opts.last("metrics")!) : undefined,
    udp: opts.has("udp")
      ? {
        rate: opts.count("udp-rate", DEFAULT_UDP_RATE, 1),
        maxRate: opts.count("udp-max-rate", DEFAULT_UDP_MAX_RATE, 1),
      }
      : undefined,
    server: {
      hosts,
      port: mainPort,
      access: allow.length + deny.length > 0 ? { allow, deny } : undefined,
      acceptRate: opts.count("accept-rate", 0),
      proxyProtocol: trusted.length > 0 ? { trusted } : undefined,
      maxConns: opts.count("max-conns", DEFAULT_MAX_CONNS),
      maxConnsPerIp: opts.count("max-conns-per-ip", DEFAULT_MAX_CONNS_PER_IP),
      idleTimeout: opts.time("idle-timeout", DEFAULT_IDLE_TIMEOUT),
      maxLifetime: opts.time("max-lifetime", DEFAULT_MAX_LIFETIME),
    },
    drainTimeout: opts.time("drain-timeout", DEFAULT_DRAIN_TIMEOUT),
    // A stats line more often than ten times a second would be a log flood.
    statsInterval: opts.time("stats-interval", DEFAULT_STATS_INTERVAL, 100),
    log: {
      level: opts.choice("log-level", LOG_LEVELS, "info"),
      format: opts.choice("log-format", LOG_FORMATS, "text"),
      file: opts.path("log-file"),
    },
    workers,
  };
}

function tlsConfig(opts: OptionValues, mainPort: number): ServeConfig["tls"] {
  const certFile = opts.path("tls-cert");
  const keyFile = opts.path("tls-key");
  const tlsPort = opts.last("tls-port");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together: give both");
  }
  if (certFile === undefined || keyFile === undefined) {
    for (const name of ["tls-port", "tls-handshake-timeout"]) {
      if (opts.has(name)) throw new UsageError(`--${name} needs --tls-cert and --tls-key`);
    }
    return undefined;
  }
  const handshakeTimeout = positiveTime(
    opts,
    "tls-handshake-timeout",
    DEFAULT_TLS_HANDSHAKE_TIMEOUT,
  );
  if (tlsPort === undefined) return { certFile, keyFile, handshakeTimeout };
  const port = parsePort(tlsPort, "--tls-port");
  if (port !== 0 && port === mainPort) {
    throw new UsageError(
      `--tls-port ${port} is --port too: leave out --tls-port to serve TLS on --port`,
    );
  }
  return { certFile, keyFile, port, handshakeTimeout };
}

function parseBlock(name: string, text: string): Cidr {
  const cidr = parseCidr(text);
  if (cidr === undefined) {
    throw new UsageError(
      `--${name} ${text} is not an address or CIDR block (e.g. 192.0.2.0/24, 2001:db8::/32)`,
    );
  }
  return cidr;
}

function parseMetricsTarget(text: string): Target {
  if (/^\d+$/.test(text)) return { host: "127.0.0.1", port: parsePort(text, "--metrics port") };
  const target = parseTarget(text);
  if (isIP(target.host) === 0) {
    throw new UsageError(`--metrics ${text}: ${target.host} is not an IP address`);
  }
  if (!/:\d+$/.test(text)) throw new UsageError(`--metrics ${text} needs a port (ADDR:PORT)`);
  return target;
}

function clientConfig(target: Target, opts: OptionValues): ClientConfig {
  if (opts.has("ipv4") && opts.has("ipv6")) {
    throw new UsageError("--ipv4 and --ipv6 exclude each other: give one");
  }
  const family = opts.has("ipv4") ? 4 : opts.has("ipv6") ? 6 : undefined;
  const literal = isIP(target.host);
  if (family !== undefined && literal !== 0 && literal !== family) {
    throw new UsageError(`${target.host} is not an IPv${family} address (--ipv${family})`);
  }
  return { target, family, connectTimeout: positiveTime(opts, "connect-timeout", 5_000) };
}

function benchConfig(target: Target, opts: OptionValues): BenchConfig {
  const mode = opts.choice("mode", BENCH_MODES, "rr");
  const connections = opts.count("connections", 50, 1);
  const workers = opts.count("workers", 1, 1);
  if (workers > connections) {
    throw new UsageError(
      `--workers ${workers} is more than --connections ${connections}: each worker needs one`,
    );
  }
  const size = opts.size("size", mode === "stream" ? 65_536 : 512);
  if (size > 16 * 1_048_576) {
    throw new UsageError(`--size ${opts.last("size")} is too large: at most 16MiB`);
  }
  return {
    target,
    mode,
    connections,
    size,
    window: opts.size("window", 262_144),
    duration: positiveTime(opts, "duration", 10_000),
    count: opts.count("count", 0),
    rate: opts.count("rate", 0),
    warmup: opts.time("warmup", 1_000),
    workers,
    connectTimeout: positiveTime(opts, "connect-timeout", 5_000),
    json: opts.has("json"),
    html: opts.path("html"),
  };
}

function serviceConfig(
  positionals: string[],
  serveArgs: string[],
  opts: OptionValues,
): ServiceConfig {
  const [action, kindText, extra] = positionals;
  if (action === undefined) {
    throw new UsageError(`echod service needs an action: ${SERVICE.usage}`);
  }
  if (!(SERVICE_ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError(
      `unknown service action '${action}'${
        hint(action, SERVICE_ACTIONS, "") || `: use ${SERVICE_ACTIONS.join(", ")}`
      }`,
    );
  }
  if (extra !== undefined) {
    throw new UsageError(`unexpected argument '${extra}': serve options go after --`);
  }
  const host = hostServiceKind();
  let kind = host;
  if (kindText !== undefined) {
    if (!(SERVICE_KINDS as readonly string[]).includes(kindText)) {
      throw new UsageError(
        `unknown service kind '${kindText}': use ${SERVICE_KINDS.join(", ")}${
          kindText.startsWith("-") ? " (serve options go after --)" : ""
        }`,
      );
    }
    kind = kindText as ServiceKind;
    if (action !== "print" && kind !== host) {
      throw new UsageError(
        `a ${kind} service cannot be ${
          action === "status" ? "queried" : `${action}ed`
        } on ${Deno.build.os}: ` +
          `this host uses ${host} (echod service print ${kind} shows the file)`,
      );
    }
  }
  const root = opts.path("root");
  if (root !== undefined && kind !== "systemd") {
    throw new UsageError("--root is for systemd only");
  }
  const serve = parseCommandLine(["serve", ...serveArgs]);
  if (serve.kind !== "serve") {
    throw new UsageError(
      "the options after -- are serve options; --help and --version do not belong there",
    );
  }
  return { action: action as ServiceAction, kind, serveArgs, serve: serve.config, root };
}

function positiveTime(opts: OptionValues, name: string, fallback: number): number {
  const ms = opts.time(name, fallback);
  if (ms === 0) {
    throw new UsageError(`--${name} must be more than 0 (1ms to ${formatDuration(MAX_DURATION)})`);
  }
  return ms;
}

function oneTarget(spec: CommandSpec, positionals: string[]): Target {
  if (positionals.length === 0) {
    throw new UsageError(`echod ${spec.name} needs a server to talk to: ${spec.usage}`);
  }
  if (positionals.length > 1) {
    throw new UsageError(`unexpected argument '${positionals[1]}': ${spec.usage}`);
  }
  return parseTarget(positionals[0]);
}

/**
 * Parses `HOST:PORT`, `[IPv6]:PORT`, or a bare host or IPv6 address (port
 * 40007).
 */
export function parseTarget(text: string): Target {
  let host: string;
  let port: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    [, host, port] = bracketed;
  } else if ((text.match(/:/g) ?? []).length > 1) {
    host = text; // a bare IPv6 address
  } else {
    const colon = text.lastIndexOf(":");
    host = colon === -1 ? text : text.slice(0, colon);
    port = colon === -1 ? undefined : text.slice(colon + 1);
  }
  if (host === "" || /[\s/]/.test(host)) {
    throw new UsageError(`'${text}' is not HOST:PORT (e.g. 127.0.0.1:40007 or [::1]:40007)`);
  }
  if (host.includes(":") && isIP(host) !== 6) {
    throw new UsageError(`'${host}' is not an IPv6 address`);
  }
  return { host, port: port === undefined ? DEFAULT_PORT : parsePort(port, "port") };
}

/**
 * The `--host` addresses in canonical form. The same address twice, or a
 * wildcard with an address of its own family (`0.0.0.0` and `127.0.0.1`),
 * cannot both be bound: say so here rather than let the OS call it "port in use".
 */
function parseHosts(texts: string[]): string[] {
  const hosts: string[] = [];
  for (const text of texts) {
    const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
    const host = isIP(bare) === 0 ? undefined : canonicalIp(bare);
    if (host === undefined) {
      throw new UsageError(
        `--host ${text} is not an IP address: use e.g. 127.0.0.1, ::1, 0.0.0.0 or ::`,
      );
    }
    const same = hosts.indexOf(host);
    if (same !== -1) {
      const given = texts[same] === host && text === host ? "" : ` (${host})`;
      throw new UsageError(
        `--host ${texts[same]} and --host ${text} are the same address${given}: give it once`,
      );
    }
    hosts.push(host);
  }
  for (const wildcard of ["0.0.0.0", "::"]) {
    if (!hosts.includes(wildcard)) continue;
    const v6 = wildcard === "::";
    const covered = hosts.find((h) => h !== wildcard && h.includes(":") === v6 && !isWildcard(h));
    if (covered !== undefined) {
      throw new UsageError(
        `--host ${wildcard} already covers --host ${covered}: leave out one of them`,
      );
    }
  }
  return hosts;
}

function isWildcard(host: string): boolean {
  return host === "::" || host === "0.0.0.0";
}

function parsePort(text: string, what: string): number {
  if (!/^-?\d+$/.test(text)) {
    throw new UsageError(`${what} '${text}' is not a number: use 0-65535`);
  }
  const port = Number(text);
  // "-0" too: a sign is never part of a port.
  if (text.startsWith("-") || port > 65535) {
    throw new UsageError(`${what} ${text} is out of range (0-65535)`);
  }
  return port;
}

function parseArgsSpec(o: OptionSpec): { type: "string" | "boolean"; short?: string } {
  // parseArgs rejects keys that are present but undefined.
  return o.short === undefined ? { type: o.kind } : { type: o.kind, short: o.short };
}

function optionLabel(o: OptionSpec): string {
  const short = o.short ? `-${o.short}, ` : "    ";
  return `${short}--${o.name}${o.value ? ` ${o.value}` : ""}`;
}

/** `: did you mean --port?` when a candidate is close to `word`, else "". */
function hint(word: string, candidates: readonly string[], prefix: string): string {
  // "warn" → "warning": a clear prefix is as good as a near miss.
  const extended = candidates.find((c) => word.length >= 3 && c.startsWith(word));
  if (extended !== undefined) return `: did you mean ${prefix}${extended}?`;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const close = bestDistance <= Math.max(2, Math.floor(word.length / 3));
  return best !== undefined && close ? `: did you mean ${prefix}${best}?` : "";
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        row[j] + 1,
        next[j - 1] + 1,
        row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length];
}
