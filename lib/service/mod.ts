/**
 * The `service` command: prints, installs, removes or queries echod as a
 * system service, with the serve options given after `--`.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import type { ServiceConfig } from "../cli/mod.ts";
import { RuntimeError, UsageError } from "../errors.ts";
import { requirePermission } from "../permissions.ts";
import { DEFAULT_MAX_CONNS } from "../serve/admission.ts";
import { DEFAULT_PORT } from "../serve/listen.ts";
import {
  CREDENTIAL_CERT,
  CREDENTIAL_KEY,
  LAUNCHD_LABEL,
  LAUNCHD_LOG_FILE,
  renderService,
  renderWindowsUninstallScript,
  SERVICE_NAME,
  type ServiceKind,
  type ServiceSpec,
  WINDOWS_LOG_FILE,
} from "./definitions.ts";

/** Runs the service action and returns the exit code. */
export async function runService(config: ServiceConfig): Promise<number> {
  const spec = serviceSpec(config);
  if (config.action === "print") {
    console.log(renderService(config.kind, spec).trimEnd());
    warnIfHidden(config, spec);
    return 0;
  }
  switch (config.kind) {
    case "systemd": {
      const code = await systemd(config, spec);
      if (config.action === "install") warnIfHidden(config, spec);
      return code;
    }
    case "launchd":
      return await launchd(config, spec);
    case "windows":
      return await windows(config, spec);
  }
}

/** systemd's ProtectHome=yes hides /root and /home: say so when the command lives there. */
function warnIfHidden(config: ServiceConfig, spec: ServiceSpec): void {
  const hidden = spec.command.find((part) => /^\/(root|home)\//.test(part));
  if (config.kind === "systemd" && hidden !== undefined) {
    console.error(
      `echod: note: the service would run ${hidden}, which ProtectHome=yes hides from it; ` +
        "install the compiled echod binary (or deno and echod) outside /root and /home",
    );
  }
}

/** The command line the service runs: this binary, or deno with main.ts when not compiled. */
function serviceSpec(config: ServiceConfig): ServiceSpec {
  const serve = config.serve;
  let args = [...config.serveArgs];
  let logFile = serve.log.file;
  if (config.kind === "windows" && logFile === undefined) {
    // No journal on Windows: the log goes to a file.
    logFile = WINDOWS_LOG_FILE;
    args.push("--log-file", logFile);
  }
  const files = servedFiles(config.kind, serve.tls, logFile);
  let tls = serve.tls && [serve.tls.certFile, serve.tls.keyFile];
  if (config.kind === "systemd" && serve.tls !== undefined) {
    // systemd hands the files over as credentials, readable by the dynamic
    // user whatever their owner and mode: the unit names them under %d.
    args = withValue(withValue(args, "tls-cert", CREDENTIAL_CERT), "tls-key", CREDENTIAL_KEY);
    tls = [CREDENTIAL_CERT, CREDENTIAL_KEY];
  }
  let command: string[];
  if (Deno.build.standalone) {
    command = [Deno.execPath(), "serve", ...args];
  } else {
    // Exactly what these serve options need under `deno run`, and no more.
    const permissions = ["--allow-net"];
    const reads = [...(serve.workers > 1 ? [] : tls ?? [])];
    if (serve.workers > 1) permissions.push("--allow-read");
    else if (reads.length > 0) permissions.push(`--allow-read=${reads.join(",")}`);
    if (logFile !== undefined) permissions.push(`--allow-write=${logFile}`);
    const main = fileURLToPath(new URL("../../main.ts", import.meta.url));
    command = [Deno.execPath(), "run", ...permissions, main, "serve", ...args];
  }
  return {
    command,
    port: serve.server.port ?? DEFAULT_PORT,
    maxConns: serve.server.maxConns ?? DEFAULT_MAX_CONNS,
    drainTimeout: serve.drainTimeout,
    logFile: config.kind === "systemd" ? serve.log.file : logFile,
    credentials: config.kind === "systemd" && serve.tls !== undefined
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
  tls: ServiceConfig["serve"]["tls"],
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

async function systemd(config: ServiceConfig, spec: ServiceSpec): Promise<number> {
  const root = config.root ?? "";
  const unitDir = `${root}/etc/systemd/system`;
  const unitPath = `${unitDir}/${SERVICE_NAME}.service`;
  const unit = `${SERVICE_NAME}.service`;
  const offline = root === "" ? [] : [`--root=${root}`];
  needPermissions(config.action, unitPath, "systemctl");
  switch (config.action) {
    case "install": {
      const changed = await writeIfChanged(unitDir, unitPath, renderService("systemd", spec));
      if (root !== "") {
        await manage("systemctl", [...offline, "enable", unit]);
        console.log(`installed ${unitPath} and enabled it in ${root}`);
        return 0;
      }
      await manage("systemctl", ["daemon-reload"]);
      await manage("systemctl", ["enable", unit]);
      await manage("systemctl", [changed ? "restart" : "start", unit]);
      console.log(
        `echod is installed and running (${unitPath}); logs: journalctl -u ${SERVICE_NAME} -f`,
      );
      return 0;
    }
    case "uninstall": {
      if (!(await exists(unitPath))) {
        console.log(`echod is not installed (no ${unitPath})`);
        return 0;
      }
      await manage("systemctl", [...offline, "disable", ...(root === "" ? ["--now"] : []), unit]);
      await removeFile(unitPath);
      if (root === "") await manage("systemctl", ["daemon-reload"]);
      console.log(`echod is stopped and removed (${unitPath})`);
      return 0;
    }
    default:
      return await passThrough("systemctl", ["status", "--no-pager", unit]);
  }
}

async function launchd(config: ServiceConfig, spec: ServiceSpec): Promise<number> {
  const plistPath = `/Library/LaunchDaemons/${LAUNCHD_LABEL}.plist`;
  const target = `system/${LAUNCHD_LABEL}`;
  needPermissions(config.action, plistPath, "launchctl");
  switch (config.action) {
    case "install": {
      await writeIfChanged("/Library/LaunchDaemons", plistPath, renderService("launchd", spec));
      await Deno.mkdir(LAUNCHD_LOG_FILE.slice(0, LAUNCHD_LOG_FILE.lastIndexOf("/")), {
        recursive: true,
      });
      // Reloading is how launchd picks up a changed plist; not loaded yet is fine.
      await manage("launchctl", ["bootout", target], { mayFail: true });
      await manage("launchctl", ["bootstrap", "system", plistPath]);
      await manage("launchctl", ["enable", target]);
      console.log(`echod is installed and running (${plistPath}); logs: ${LAUNCHD_LOG_FILE}`);
      return 0;
    }
    case "uninstall": {
      if (!(await exists(plistPath))) {
        console.log(`echod is not installed (no ${plistPath})`);
        return 0;
      }
      await manage("launchctl", ["bootout", target], { mayFail: true });
      await removeFile(plistPath);
      console.log(`echod is stopped and removed (${plistPath})`);
      return 0;
    }
    default:
      return await passThrough("launchctl", ["print", target]);
  }
}

async function windows(config: ServiceConfig, spec: ServiceSpec): Promise<number> {
  needPermissions(config.action, undefined, "powershell.exe");
  const script = config.action === "install"
    ? renderService("windows", spec)
    : config.action === "uninstall"
    ? renderWindowsUninstallScript()
    : `Get-ScheduledTask -TaskName '${SERVICE_NAME}' | Format-List TaskName,State\n` +
      `Get-ScheduledTaskInfo -TaskName '${SERVICE_NAME}' | Format-List LastRunTime,LastTaskResult\n`;
  if (config.action === "status") {
    return await passThrough("powershell.exe", [
      "-NoProfile",
      "-NonInteractive",
      "-Command",
      script,
    ]);
  }
  const output = await manage(
    "powershell.exe",
    ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command", "-"],
    { stdin: script },
  );
  console.log(output.trim());
  return 0;
}

/** Under `deno run`, says which flags are missing before anything is changed. */
function needPermissions(action: string, path: string | undefined, program: string): void {
  const changes = (action === "install" || action === "uninstall") && path !== undefined;
  requirePermission(`echod service ${action}`, [
    ...(changes ? [{ name: "write" as const, path }] : []),
    { name: "run", command: program },
  ]);
}

async function writeIfChanged(dir: string, path: string, text: string): Promise<boolean> {
  let previous: string | undefined;
  try {
    previous = await Deno.readTextFile(path);
  } catch {
    // Not there yet.
  }
  if (previous === text) return false;
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(path, text);
  } catch (error) {
    throw denied(error, `writing ${path}`);
  }
  return true;
}

async function removeFile(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    throw denied(error, `removing ${path}`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

function denied(error: unknown, what: string): Error {
  if (error instanceof Deno.errors.PermissionDenied) {
    return new RuntimeError(
      `${what} was denied: run echod service as root (sudo) or Administrator`,
    );
  }
  return new RuntimeError(`${what} failed: ${(error as Error).message}`);
}

/** Runs a service manager command; throws with its first error line when it fails. */
async function manage(
  program: string,
  args: string[],
  options: { mayFail?: boolean; stdin?: string } = {},
): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    const child = new Deno.Command(program, {
      args,
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    }
    output = await child.output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new RuntimeError(`${program} was not found: this host does not look like it uses it`);
    }
    throw error;
  }
  const decoder = new TextDecoder();
  if (!output.success && !options.mayFail) {
    const stderr = decoder.decode(output.stderr).trim();
    const first = stderr.split("\n")[0] || `exit code ${output.code}`;
    if (
      /access (is )?denied|permission denied|not permitted|must be root|interactive authentication/i
        .test(stderr)
    ) {
      throw new RuntimeError(
        `${program} ${args[0]} was denied: run echod service as root (sudo) or Administrator`,
      );
    }
    throw new RuntimeError(`${program} ${args.join(" ")} failed: ${first}`);
  }
  return decoder.decode(output.stdout);
}

/** Runs a status command with its output shown as is; returns its exit code. */
async function passThrough(program: string, args: string[]): Promise<number> {
  try {
    const status = await new Deno.Command(program, { args, stdin: "null" }).spawn().status;
    return status.code;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new RuntimeError(`${program} was not found: this host does not look like it uses it`);
    }
    throw error;
  }
}
