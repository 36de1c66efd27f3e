/**
 * `echod serve`: its options, for the parser, the help and the README's
 * table; `serve_config.ts` turns their values into a configuration.
 *
 * @module
 */

import { LOG_LEVELS } from "../log.ts";
import {
  DEFAULT_ACCEPT_RATE,
  DEFAULT_DRAIN_TIMEOUT,
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
import { formatDuration } from "../units.ts";
import { type CommandSpec, HELP } from "./options.ts";

/** The serve command's options. */
export const SERVE: CommandSpec = {
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
      multiple: true,
      help: `TCP port, 0 to let the OS pick; repeat for more (default: ${DEFAULT_PORT})`,
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
      name: "shutdown-delay",
      kind: "string",
      value: "DURATION",
      help: `on SIGTERM, go on accepting this long with /readyz failing, then drain (default: ${
        formatDuration(DEFAULT_SHUTDOWN_DELAY)
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
      help: `${LOG_LEVELS.join(", ")} (default: ${DEFAULT_LOG_LEVEL})`,
    },
    {
      name: "log-format",
      kind: "string",
      value: "FORMAT",
      help: `text, or json for JSON Lines (default: ${DEFAULT_LOG_FORMAT})`,
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
      help: `serve from N threads sharing the port, Linux only (default: ${DEFAULT_WORKERS})`,
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
      help:
        `new connections per second from one address, 0 for no limit (default: ${DEFAULT_ACCEPT_RATE})`,
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
      name: "greeting",
      kind: "boolean",
      optionalValue: "TEMPLATE",
      help: "send a line naming the server and the client it sees when a connection opens " +
        "(--greeting=TEMPLATE: your own, with {host} {local} {client} {proxy} {via} " +
        "{transport} {time} {version} {fault} {env:NAME}; off by default)",
    },
    {
      name: "metrics",
      kind: "string",
      value: "[ADDR:]PORT",
      help: "serve Prometheus /metrics, /healthz and /readyz here (default: off; ADDR: 127.0.0.1)",
    },
    {
      name: "quitquitquit",
      kind: "boolean",
      help: "with --metrics, POST /quitquitquit there stops echod as SIGTERM does (off by default)",
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
    {
      name: "fault",
      kind: "string",
      value: "[PORT:]SPEC",
      multiple: true,
      separator: ";",
      help: "misbehave on purpose on PORT (every port without PORT:); SPEC is a comma-separated " +
        "list of latency=DUR jitter=DUR rate=SIZE slice=SIZE stall-after=SIZE reset-after=SIZE " +
        "close-after=SIZE refuse blackhole p=FRACTION, and for --udp drop=FRACTION " +
        "duplicate=FRACTION delay=DUR; repeatable (ECHOD_FAULT: separate profiles with ;)",
    },
    HELP,
    { name: "version", kind: "boolean", short: "V", help: "show the version and exit" },
  ],
  examples: [
    "echod                              serve on port 40007, all addresses",
    "echod --port 7007 --host ::1       serve on ::1 only",
    "echod --log-level debug --log-format json",
    "echod -p 7000 -p 7001 --fault 7001:latency=200ms,jitter=50ms   a slow port beside a clean one",
  ],
};
