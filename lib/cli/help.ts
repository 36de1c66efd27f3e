/**
 * `--help`: the text each command prints, made from its option table.
 *
 * @module
 */

import { type CommandSpec, optionLabel } from "./options.ts";

/** The text `echod --help` (or `echod COMMAND --help`) prints. */
export function helpText(spec: CommandSpec): string {
  const command = spec.name;
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
      "Durations: 500ms, 30s, 10m, 1h. Stop with SIGINT, SIGTERM or SIGQUIT (a second signal stops at once); SIGHUP reopens --log-file and reloads --tls-cert and --tls-key.\n" +
      "Every option can also be set as ECHOD_<OPTION> (ECHOD_PORT, ECHOD_MAX_CONNS, ECHOD_TLS_CERT; lists comma-separated, yes/no as true/false); a flag wins over its variable. Variables are read only with --allow-env.",
    client: "Durations: 500ms, 30s, 10m, 1h.",
    bench: "Durations: 500ms, 30s, 10m, 1h. Sizes: 512, 64KiB, 1MiB.",
    service:
      "install, uninstall, status, start, stop and restart need root (sudo) or Administrator; print needs nothing.",
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
