/**
 * `echod serve`: what the values read against its options (`serve.ts`),
 * from flags and `ECHOD_*` variables, parse into, with one line for every
 * value or combination that cannot be served.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { LOG_FORMATS, LOG_LEVELS } from "../log.ts";
import {
  DEFAULT_ACCEPT_RATE,
  DEFAULT_DRAIN_TIMEOUT,
  DEFAULT_GREETING,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_LOG_FORMAT,
  DEFAULT_LOG_LEVEL,
  DEFAULT_MAX_CONNS,
  DEFAULT_MAX_CONNS_PER_IP,
  DEFAULT_MAX_LIFETIME,
  DEFAULT_PORT,
  DEFAULT_SHUTDOWN_DELAY,
  DEFAULT_STATS_INTERVAL,
  DEFAULT_TLS_HANDSHAKE_TIMEOUT,
  DEFAULT_UDP_MAX_RATE,
  DEFAULT_UDP_RATE,
  DEFAULT_WORKERS,
} from "../serve/defaults.ts";
import type { ServeConfig } from "../serve/options.ts";
import { parseBlock, parseHosts, parseMetricsTarget, parsePort } from "./addresses.ts";
import { hint, type OptionValues } from "./options.ts";
import { requirePermission } from "../permissions.ts";
import { lineBreaker, PLACEHOLDERS, unknownPlaceholder } from "../serve/greeting.ts";
import {
  actsOnUdp,
  FAULT_KEYS,
  type FaultRule,
  FaultSpecError,
  parseFaultRule,
} from "../serve/fault_spec.ts";

/** Turns the values read against {@linkcode SERVE} into a {@linkcode ServeConfig}. */
export function serveConfig(opts: OptionValues): ServeConfig {
  const hosts = parseHosts(opts.all("host"), opts.label("host"));
  // "port 70000 is out of range": the flag's value reads as a port.
  const portLabel = opts.label("port") === "--port" ? "port" : opts.label("port");
  const ports = opts.all("port").map((text) => parsePort(text, portLabel));
  const mainPort = ports[0] ?? DEFAULT_PORT;
  const twice = ports.find((p, i) => p !== 0 && ports.indexOf(p) !== i);
  if (twice !== undefined) throw new UsageError(`${opts.label("port")} ${twice} is given twice`);
  const allow = opts.all("allow").map((text) => parseBlock(opts.label("allow"), text));
  const deny = opts.all("deny").map((text) => parseBlock(opts.label("deny"), text));
  const trusted = opts.all("trusted-proxy").map((text) =>
    parseBlock(opts.label("trusted-proxy"), text)
  );
  if (opts.has("proxy-protocol") && trusted.length === 0) {
    throw new UsageError(
      "--proxy-protocol needs at least one --trusted-proxy CIDR (your load balancers' addresses)",
    );
  }
  if (!opts.has("proxy-protocol") && trusted.length > 0) {
    throw new UsageError("--trusted-proxy needs --proxy-protocol");
  }
  const workers = opts.count("workers", DEFAULT_WORKERS, 1);
  if (workers > 1 && ports.length > 1) {
    throw new UsageError(
      "--workers serves one --port: run one process per port, or leave out --workers",
    );
  }
  if (workers > 1 && opts.has("tls-cert")) {
    // The TLS context (Node's SecureContext, reloaded on SIGHUP in this
    // thread) cannot be sent to a worker.
    throw new UsageError("--workers cannot serve TLS (--tls-cert): run one process for TLS");
  }
  for (const name of ["udp-rate", "udp-max-rate"]) {
    if (opts.has(name) && !opts.has("udp")) throw new UsageError(`${opts.label(name)} needs --udp`);
  }
  const tls = tlsConfig(opts, ports.length > 0 ? ports : [mainPort]);
  const faults = faultRules(opts, {
    ports: ports.length > 0 ? ports : [mainPort],
    tlsPort: tls?.port,
    udp: opts.has("udp"),
  });
  const metrics = opts.has("metrics")
    ? parseMetricsTarget(opts.last("metrics")!, opts.label("metrics"))
    : undefined;
  if (opts.has("quitquitquit") && metrics === undefined) {
    throw new UsageError(
      `${opts.label("quitquitquit")} needs --metrics: POST /quitquitquit is served there`,
    );
  }
  if (metrics !== undefined) {
    checkMetricsPort(metrics, opts, { hosts, ports: [...(ports.length ? ports : [mainPort])] });
    if (tls?.port !== undefined) checkMetricsPort(metrics, opts, { hosts, ports: [tls.port] });
  }
  return {
    tls,
    metrics: metrics && { ...metrics, quit: opts.has("quitquitquit") },
    udp: opts.has("udp")
      ? {
        rate: opts.count("udp-rate", DEFAULT_UDP_RATE, 1),
        maxRate: opts.count("udp-max-rate", DEFAULT_UDP_MAX_RATE, 1),
      }
      : undefined,
    server: {
      hosts,
      port: mainPort,
      ports: ports.length > 1 ? ports.slice(1) : undefined,
      greeting: greeting(opts),
      // Left out when none, so a plain configuration reads as before.
      ...(faults.length > 0 ? { faults } : {}),
      access: allow.length + deny.length > 0 ? { allow, deny } : undefined,
      acceptRate: opts.count("accept-rate", DEFAULT_ACCEPT_RATE),
      proxyProtocol: trusted.length > 0 ? { trusted } : undefined,
      maxConns: opts.count("max-conns", DEFAULT_MAX_CONNS),
      maxConnsPerIp: opts.count("max-conns-per-ip", DEFAULT_MAX_CONNS_PER_IP),
      idleTimeout: opts.time("idle-timeout", DEFAULT_IDLE_TIMEOUT),
      maxLifetime: opts.time("max-lifetime", DEFAULT_MAX_LIFETIME),
    },
    drainTimeout: opts.time("drain-timeout", DEFAULT_DRAIN_TIMEOUT),
    shutdownDelay: opts.time("shutdown-delay", DEFAULT_SHUTDOWN_DELAY),
    // A stats line more often than ten times a second would be a log flood.
    statsInterval: opts.time("stats-interval", DEFAULT_STATS_INTERVAL, 100),
    log: {
      level: opts.choice("log-level", LOG_LEVELS, DEFAULT_LOG_LEVEL),
      format: opts.choice("log-format", LOG_FORMATS, DEFAULT_LOG_FORMAT),
      file: opts.path("log-file"),
    },
    workers,
  };
}

/**
 * `--fault [PORT:]SPEC`, each parsed by `fault_spec.ts` and checked against
 * what is served: a port of its own, one profile per port, UDP keys with
 * `--udp`. Every error names the value: `--fault 7001:latency=fast: …`.
 */
function faultRules(
  opts: OptionValues,
  served: { ports: number[]; tlsPort?: number; udp: boolean },
): FaultRule[] {
  const label = opts.label("fault");
  const rules: FaultRule[] = [];
  for (const text of opts.all("fault")) {
    const fail = (why: string) => new UsageError(`${label} ${text}: ${why}`);
    let rule: FaultRule;
    try {
      rule = parseFaultRule(text);
    } catch (error) {
      if (!(error instanceof FaultSpecError)) throw error;
      const near = error.unknownKey === undefined ? "" : hint(error.unknownKey, FAULT_KEYS, "");
      throw fail(near === "" ? error.message : `unknown key ${error.unknownKey}${near}`);
    }
    const { port, profile } = rule;
    const known = [...served.ports, ...(served.tlsPort === undefined ? [] : [served.tlsPort])];
    if (port !== undefined && !known.includes(port)) {
      throw fail(
        `port ${port} is not served (${known.join(", ")}): give it with --port, or leave out ` +
          `${port}: to apply the profile to every port`,
      );
    }
    if (rules.some((other) => other.port === port)) {
      throw fail(
        port === undefined
          ? "a second profile for every port: give one --fault without PORT:"
          : `a second profile for port ${port}: put its keys in one --fault`,
      );
    }
    if (actsOnUdp(profile) && !served.udp) {
      throw fail("drop, duplicate and delay act on UDP: add --udp");
    }
    rules.push(rule);
  }
  return rules;
}

/** `--greeting` alone: the default template; `--greeting=TEMPLATE`: that one, checked. */
function greeting(opts: OptionValues): string | undefined {
  if (!opts.has("greeting")) return undefined;
  const label = opts.label("greeting");
  const template = opts.last("greeting") || DEFAULT_GREETING;
  const control = lineBreaker(template);
  if (control !== undefined) {
    const name = control === "\n"
      ? "a line feed"
      : control === "\r"
      ? "a carriage return"
      : `U+${control.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
    throw new UsageError(
      `${label} must be one line, but the template has ${name} in it: the greeting ends with the line`,
    );
  }
  const unknown = unknownPlaceholder(template);
  if (unknown !== undefined) {
    const names = Object.keys(PLACEHOLDERS);
    throw new UsageError(
      `${label} has an unknown placeholder {${unknown}}${
        hint(unknown, names, "") ||
        `: use ${names.map((n) => `{${n}}`).join(", ")} or {env:NAME}`
      }`,
    );
  }
  const variables = [...template.matchAll(/\{env:([^{}]*)\}/g)].map((match) => match[1]);
  requirePermission(
    `${label} with {env:${variables[0]}}`,
    variables.map((variable) => ({ name: "env", variable })),
  );
  return template;
}

/**
 * `--metrics` on a port echod serves echo on (same port, an address both
 * would bind): a usage error naming both, not "address in use" at start.
 */
function checkMetricsPort(
  metrics: { host: string; port: number },
  opts: OptionValues,
  echo: { hosts: string[]; ports: number[] },
): void {
  if (metrics.port === 0 || !echo.ports.includes(metrics.port)) return;
  const wildcard = (host: string) => host === "::" || host === "0.0.0.0";
  const overlaps = echo.hosts.length === 0 || wildcard(metrics.host) ||
    echo.hosts.some((host) => wildcard(host) || host === metrics.host);
  if (!overlaps) return;
  const which = opts.has("tls-port") && opts.last("tls-port") === String(metrics.port)
    ? opts.label("tls-port")
    : opts.label("port");
  throw new UsageError(
    `${
      opts.label("metrics")
    } ${metrics.host}:${metrics.port} uses the port of ${which} ${metrics.port}: ` +
      `give the metrics a port of their own`,
  );
}

function tlsConfig(opts: OptionValues, ports: number[]): ServeConfig["tls"] {
  const certFile = opts.path("tls-cert");
  const keyFile = opts.path("tls-key");
  const tlsPort = opts.last("tls-port");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError(
      `${opts.label("tls-cert")} and ${opts.label("tls-key")} go together: give both`,
    );
  }
  if (certFile === undefined || keyFile === undefined) {
    for (const name of ["tls-port", "tls-handshake-timeout"]) {
      if (opts.has(name)) {
        throw new UsageError(`${opts.label(name)} needs --tls-cert and --tls-key`);
      }
    }
    return undefined;
  }
  const handshakeTimeout = opts.positiveTime(
    "tls-handshake-timeout",
    DEFAULT_TLS_HANDSHAKE_TIMEOUT,
  );
  if (tlsPort === undefined) return { certFile, keyFile, handshakeTimeout };
  const label = opts.label("tls-port");
  const port = parsePort(tlsPort, label);
  if (port !== 0 && port === ports[0]) {
    throw new UsageError(
      `${label} ${port} is ${opts.label("port")} too: leave out ${label} to serve TLS on --port`,
    );
  }
  if (port !== 0 && ports.includes(port)) {
    throw new UsageError(
      `${label} ${port} is also given as ${opts.label("port")} ${port}: ` +
        `TLS needs a port of its own (or leave out ${label} to serve TLS on the first --port)`,
    );
  }
  return { certFile, keyFile, port, handshakeTimeout };
}
