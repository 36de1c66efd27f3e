/**
 * What a service is made from: the command line it runs, with exactly the
 * permissions its serve options need, and the files it touches, checked
 * for what the service manager could not honour. Shared by every manager.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import type { ServeConfig } from "../serve/options.ts";
import { UsageError } from "../errors.ts";
import { DEFAULT_MAX_CONNS, DEFAULT_PORT } from "../serve/defaults.ts";

/** The service managers echod can be installed under. */
export type ServiceKind = "systemd" | "launchd" | "windows";

/** The kinds, for the command line. */
export const SERVICE_KINDS: readonly ServiceKind[] = ["systemd", "launchd", "windows"];

/** The service name (systemd unit, Windows service). */
export const SERVICE_NAME = "echod";

/** The launchd label. */
export const LAUNCHD_LABEL = "dev.echod";

/** Where the Windows service logs, since Windows has no journal to catch stderr. */
export const WINDOWS_LOG_FILE = "C:\\ProgramData\\echod\\echod.log";

/** Where the macOS daemon's stderr goes. */
export const LAUNCHD_LOG_FILE = "/var/log/echod/echod.log";

// Stands for systemd's credentials directory in a command; rendered as the
// specifier %d after quoting (which would otherwise escape the %).
export const CREDENTIALS_DIR = "\u0001credentials\u0001";

/** Where a systemd service finds `--tls-cert`, handed over with `LoadCredential=`. */
export const CREDENTIAL_CERT = `${CREDENTIALS_DIR}/tls-cert`;

/** Where a systemd service finds `--tls-key`, handed over with `LoadCredential=`. */
export const CREDENTIAL_KEY = `${CREDENTIALS_DIR}/tls-key`;

/** What a service definition is made from. */
export interface ServiceSpec {
  /** The program and arguments that run `echod serve …`. */
  command: string[];
  /** The port served, to decide whether binding needs a capability. */
  port: number;
  /** Every TCP port served (`--port`s and `--tls-port`), for a firewall rule. */
  tcpPorts: number[];
  /** Every UDP port served (with `--udp`: the `--port`s). */
  udpPorts: number[];
  /** `--max-conns`, to size the descriptor limit (0: no limit). */
  maxConns: number;
  /** `--drain-timeout` in ms, so the manager waits for the drain before killing. */
  drainTimeout: number;
  /** `--log-file`, if given, so the sandbox lets echod write there. */
  logFile?: string;
  /** systemd only: credential name → the file systemd loads it from (`LoadCredential=`). */
  credentials?: Record<string, string>;
  /**
   * Whether `command` runs `deno run main.ts` rather than the compiled
   * binary; Deno then needs a module cache the service may write.
   */
  viaDeno?: boolean;
}

/** What `echod service` can do. */
export type ServiceAction =
  | "install"
  | "uninstall"
  | "status"
  | "start"
  | "stop"
  | "restart"
  | "print"
  | "run";

/** The actions that start, stop or restart an installed service. */
export type ControlAction = "start" | "stop" | "restart";

/** Whether `action` starts, stops or restarts an installed service. */
export function isControl(action: ServiceAction): action is ControlAction {
  return action === "start" || action === "stop" || action === "restart";
}

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

/** The kind of service manager this host uses. */
export function hostServiceKind(): ServiceKind {
  if (Deno.build.os === "windows") return "windows";
  if (Deno.build.os === "darwin") return "launchd";
  return "systemd";
}

/** Descriptors to allow: every connection, plus room for the runtime and refusals. */
export function descriptorLimit(maxConns: number): number {
  return maxConns === 0 ? 1_048_576 : maxConns + 1_024;
}

/** The command line the service runs: this binary, or deno with main.ts when not compiled. */
export function serviceSpec(
  kind: ServiceKind,
  given: { serve: ServeConfig; serveArgs: string[] },
): ServiceSpec {
  const serve = given.serve;
  let args = [...given.serveArgs];
  let logFile = serve.log.file;
  if (kind === "windows" && logFile === undefined) {
    // No journal on Windows: the log goes to a file.
    logFile = WINDOWS_LOG_FILE;
    args.push("--log-file", logFile);
  }
  const files = servedFiles(kind, serve.tls, logFile);
  let tls = serve.tls && [serve.tls.certFile, serve.tls.keyFile];
  if (kind === "systemd" && serve.tls !== undefined) {
    // systemd hands the files over as credentials, readable by the dynamic
    // user whatever their owner and mode: the unit names them under %d.
    args = withValue(withValue(args, "tls-cert", CREDENTIAL_CERT), "tls-key", CREDENTIAL_KEY);
    tls = [CREDENTIAL_CERT, CREDENTIAL_KEY];
  }
  // A Windows service is started as `echod service run`, which answers the
  // service manager and then serves.
  const verb = kind === "windows" ? ["service", "run", "--"] : ["serve"];
  let command: string[];
  if (Deno.build.standalone) {
    command = [Deno.execPath(), ...verb, ...args];
  } else {
    // Exactly what these serve options need under `deno run`, and no more.
    const permissions = ["--allow-net"];
    const reads = [...(serve.workers > 1 ? [] : tls ?? [])];
    if (serve.workers > 1) permissions.push("--allow-read");
    else if (reads.length > 0) permissions.push(`--allow-read=${reads.join(",")}`);
    if (logFile !== undefined) permissions.push(`--allow-write=${logFile}`);
    if (serve.server.greeting !== undefined) permissions.push("--allow-sys=hostname");
    if (kind === "windows") permissions.push("--allow-ffi");
    const main = fileURLToPath(new URL("../../main.ts", import.meta.url));
    command = [Deno.execPath(), "run", ...permissions, main, ...verb, ...args];
  }
  const port = serve.server.port ?? DEFAULT_PORT;
  const ports = [...new Set([port, ...(serve.server.ports ?? [])])].filter((p) => p !== 0);
  const tlsPort = serve.tls?.port;
  return {
    command,
    port,
    tcpPorts: tlsPort === undefined || tlsPort === 0 ? ports : [...ports, tlsPort],
    udpPorts: serve.udp === undefined ? [] : ports,
    maxConns: serve.server.maxConns ?? DEFAULT_MAX_CONNS,
    drainTimeout: serve.drainTimeout,
    logFile: kind === "systemd" ? serve.log.file : logFile,
    credentials: kind === "systemd" && serve.tls !== undefined
      ? { "tls-cert": files[0], "tls-key": files[1] }
      : undefined,
    viaDeno: !Deno.build.standalone,
  };
}

/**
 * The files the service reads or writes, checked for what the service
 * could not honour: a relative path (a service does not start in this
 * folder), and under systemd's sandbox a path it hides (PrivateTmp,
 * ProtectHome). Throws {@linkcode UsageError} naming the fix.
 */
function servedFiles(
  kind: ServiceKind,
  tls: ServeConfig["tls"],
  logFile: string | undefined,
): string[] {
  const files: [string, string][] = [];
  if (tls !== undefined) files.push(["--tls-cert", tls.certFile], ["--tls-key", tls.keyFile]);
  if (logFile !== undefined) files.push(["--log-file", logFile]);
  for (const [option, path] of files) {
    if (!isAbsolute(path)) {
      throw new UsageError(
        `${option} ${path} is a relative path, and a service does not start in this folder: give an absolute path`,
      );
    }
    // TLS files reach a systemd service as credentials; only the log file lives in its sandbox.
    if (kind !== "systemd" || option !== "--log-file") continue;
    const hidden = /^\/(tmp|var\/tmp)(\/|$)/.test(path)
      ? "PrivateTmp=yes gives the service a /tmp of its own"
      : /^\/(home|root)(\/|$)/.test(path)
      ? "ProtectHome=yes hides /home and /root from the service"
      : undefined;
    if (hidden !== undefined) {
      throw new UsageError(
        `${option} ${path}: ${hidden}; choose a file elsewhere, e.g. /var/log/echod/echod.log`,
      );
    }
  }
  return files.map(([, path]) => path);
}

/** `args` with the value of `--name` (as `--name V` or `--name=V`) replaced by `value`. */
function withValue(args: string[], name: string, value: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}` && i + 1 < args.length) {
      out.push(args[i], value);
      i++;
    } else if (args[i].startsWith(`--${name}=`)) {
      out.push(`--${name}=${value}`);
    } else {
      out.push(args[i]);
    }
  }
  return out;
}

function isAbsolute(path: string): boolean {
  return path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith("\\\\");
}

/** Escapes text for XML (the launchd plist). */
export function xmlEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** The folder a path is in. */
export function parentDir(path: string): string {
  const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return cut <= 0 ? (cut === 0 ? "/" : ".") : path.slice(0, cut);
}
