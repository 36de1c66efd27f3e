/**
 * The command line: `echod [serve] [options]`, `echod --help`,
 * `echod --version`. Parsing turns argv into a {@linkcode Command} or throws
 * {@linkcode UsageError} with one line that says what was wrong and what to
 * do. Nothing here reads the environment or the file system.
 *
 * @module
 */

import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { DEFAULT_MAX_CONNS, DEFAULT_MAX_CONNS_PER_IP } from "./admission.ts";
import { formatDuration, parseDuration } from "./duration.ts";
import { UsageError } from "./errors.ts";
import { DEFAULT_PORT } from "./listen.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogOptions } from "./log.ts";
import {
  DEFAULT_DRAIN_TIMEOUT,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_MAX_LIFETIME,
  type ServeOptions,
} from "./server.ts";
import { DEFAULT_STATS_INTERVAL } from "./stats.ts";

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
}

/** What the command line asks for. */
export type Command =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "serve"; config: ServeConfig };

const COMMANDS = ["serve", "help"];

interface OptionSpec {
  name: string;
  kind: "string" | "boolean";
  short?: string;
  value?: string;
  multiple?: boolean;
  help: string;
}

const OPTIONS: OptionSpec[] = [
  {
    name: "host",
    kind: "string",
    value: "ADDR",
    multiple: true,
    help: "listen on this IP address only; repeat for more (default: all IPv6 and IPv4 addresses)",
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
    help: "append the log to this file instead of stderr (needs --allow-write=PATH under deno run)",
  },
  {
    name: "help",
    kind: "boolean",
    short: "h",
    help: "show this help and exit",
  },
  {
    name: "version",
    kind: "boolean",
    short: "V",
    help: "show the version and exit",
  },
];

/** The text `echod --help` prints. */
export function helpText(): string {
  const width = Math.max(
    ...OPTIONS.map((o) => optionLabel(o).length),
  );
  const lines = OPTIONS.map((o) => `  ${optionLabel(o).padEnd(width)}  ${o.help}`);
  return [
    "echod: TCP echo server (RFC 862) on IPv6 and IPv4",
    "",
    "Usage:",
    "  echod [serve] [options]",
    "",
    "Options:",
    ...lines,
    "",
    "Durations: 500ms, 30s, 10m, 1h. Stop with SIGINT or SIGTERM; a second signal stops at once.",
    "",
    "Examples:",
    "  echod                              serve on port 40007, all addresses",
    "  echod --port 7007 --host ::1       serve on ::1 only",
    "  echod --log-level debug --log-format json",
    "",
  ].join("\n");
}

/**
 * Parses `args` (without the program name). Throws {@linkcode UsageError}
 * for anything that cannot be run as written.
 */
export function parseCommandLine(args: string[]): Command {
  const { tokens } = parseArgs({
    args,
    options: Object.fromEntries(OPTIONS.map((o) => [o.name, parseArgsSpec(o)])),
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const values = new Map<string, string[]>();
  let command: string | undefined;
  for (const token of tokens) {
    if (token.kind === "positional") {
      if (command !== undefined) {
        throw new UsageError(
          `unexpected argument '${token.value}': options start with --`,
        );
      }
      if (!COMMANDS.includes(token.value)) {
        const near = hint(token.value, COMMANDS, "");
        throw new UsageError(
          `unknown command '${token.value}'${near || `: commands are ${COMMANDS.join(", ")}`}`,
        );
      }
      command = token.value;
      continue;
    }
    if (token.kind !== "option") {
      throw new UsageError("arguments after '--' are not used by echod serve");
    }
    const spec = OPTIONS.find((o) => o.name === token.name);
    if (spec === undefined) {
      const names = OPTIONS.map((o) => o.name);
      throw new UsageError(
        `unknown option ${token.rawName}${hint(token.name, names, "--")}`,
      );
    }
    if (spec.kind === "boolean") {
      if (token.value !== undefined) {
        throw new UsageError(`--${spec.name} takes no value`);
      }
      values.set(spec.name, ["true"]);
      continue;
    }
    if (token.value === undefined) {
      throw new UsageError(
        `--${spec.name} needs a value (--${spec.name} ${spec.value})`,
      );
    }
    values.set(spec.name, [...(values.get(spec.name) ?? []), token.value]);
  }
  if (values.has("help") || command === "help") return { kind: "help" };
  if (values.has("version")) return { kind: "version" };
  return { kind: "serve", config: serveConfig(values) };
}

function serveConfig(values: Map<string, string[]>): ServeConfig {
  function last(name: string): string | undefined {
    return values.get(name)?.at(-1);
  }
  const hosts = (values.get("host") ?? []).map(parseHost);
  const duplicate = hosts.find((h, i) => hosts.indexOf(h) !== i);
  if (duplicate !== undefined) {
    throw new UsageError(`--host ${duplicate} is given twice`);
  }
  return {
    server: {
      hosts,
      port: parsePort(last("port")),
      maxConns: parseCount("max-conns", last("max-conns"), DEFAULT_MAX_CONNS),
      maxConnsPerIp: parseCount(
        "max-conns-per-ip",
        last("max-conns-per-ip"),
        DEFAULT_MAX_CONNS_PER_IP,
      ),
      idleTimeout: parseTime(
        "idle-timeout",
        last("idle-timeout"),
        DEFAULT_IDLE_TIMEOUT,
      ),
      maxLifetime: parseTime(
        "max-lifetime",
        last("max-lifetime"),
        DEFAULT_MAX_LIFETIME,
      ),
    },
    drainTimeout: parseTime(
      "drain-timeout",
      last("drain-timeout"),
      DEFAULT_DRAIN_TIMEOUT,
    ),
    statsInterval: parseTime(
      "stats-interval",
      last("stats-interval"),
      DEFAULT_STATS_INTERVAL,
    ),
    log: {
      level: parseChoice("log-level", last("log-level"), LOG_LEVELS, "info"),
      format: parseChoice(
        "log-format",
        last("log-format"),
        LOG_FORMATS,
        "text",
      ),
      file: parseFile(last("log-file")),
    },
  };
}

function parseHost(text: string): string {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (isIP(bare) === 0) {
    throw new UsageError(
      `--host ${text} is not an IP address: use e.g. 127.0.0.1, ::1, 0.0.0.0 or ::`,
    );
  }
  return bare;
}

function parsePort(text: string | undefined): number {
  if (text === undefined) return DEFAULT_PORT;
  if (!/^-?\d+$/.test(text)) {
    throw new UsageError(`port '${text}' is not a number: use 0-65535`);
  }
  const port = Number(text);
  if (port < 0 || port > 65535) {
    throw new UsageError(`port ${text} is out of range (0-65535)`);
  }
  return port;
}

function parseCount(
  name: string,
  text: string | undefined,
  fallback: number,
): number {
  if (text === undefined) return fallback;
  if (/^-\d+$/.test(text)) {
    throw new UsageError(
      `--${name} must not be negative (got ${text}); 0 means no limit`,
    );
  }
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(
      `--${name} '${text}' is not a whole number; 0 means no limit`,
    );
  }
  return Number(text);
}

function parseTime(
  name: string,
  text: string | undefined,
  fallback: number,
): number {
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
  return ms;
}

function parseChoice<T extends string>(
  name: string,
  text: string | undefined,
  choices: readonly T[],
  fallback: T,
): T {
  if (text === undefined) return fallback;
  if ((choices as readonly string[]).includes(text)) return text as T;
  throw new UsageError(
    `--${name} '${text}' is not one of ${choices.join(", ")}${hint(text, choices, "")}`,
  );
}

function parseFile(text: string | undefined): string | undefined {
  if (text === "") throw new UsageError("--log-file needs a path");
  return text;
}

function parseArgsSpec(
  o: OptionSpec,
): { type: "string" | "boolean"; short?: string } {
  // parseArgs rejects keys that are present but undefined.
  return o.short === undefined ? { type: o.kind } : { type: o.kind, short: o.short };
}

function optionLabel(o: OptionSpec): string {
  const short = o.short ? `-${o.short}, ` : "    ";
  return `${short}--${o.name}${o.value ? ` ${o.value}` : ""}`;
}

/** `: did you mean --port?` when a candidate is close to `word`, else "". */
function hint(
  word: string,
  candidates: readonly string[],
  prefix: string,
): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  // "warn" → "warning": a clear prefix is as good as a near miss.
  const extended = candidates.find((c) => word.length >= 3 && c.startsWith(word));
  if (extended !== undefined) return `: did you mean ${prefix}${extended}?`;
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
