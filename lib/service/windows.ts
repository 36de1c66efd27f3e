/**
 * Windows: echod as a native service of the Service Control Manager.
 * `install`, `uninstall` and `status` talk to the SCM directly (`scm.ts`,
 * the calls `sc.exe` makes), so they work wherever the SCM does, Wine's
 * included; `print` shows the same set-up as a PowerShell script.
 *
 * @module
 */

import type { ControlAction, ServiceConfig } from "./spec.ts";
import { parentDir, SERVICE_NAME, type ServiceSpec } from "./spec.ts";
import { RuntimeError } from "../errors.ts";
import { requirePermission } from "../permissions.ts";
import { manage, NOT_INSTALLED, reportControl } from "./system.ts";
import type { Service, ServiceState } from "./scm.ts";

/** What services.msc and `Get-Service` show. */
const DISPLAY_NAME = "echod TCP echo server";

/** After a crash or a failed start: restart after 5 s, 5 s, then every minute. */
const RESTART_DELAYS = [5_000, 5_000, 60_000];

/** A day without failures resets the count. */
const RESET_PERIOD = 86_400;

/** How long a service may take to report RUNNING after a start (ms). */
const START_TIMEOUT = 30_000;

/** The description services.msc shows. */
function description(spec: ServiceSpec): string {
  return `TCP echo server (RFC 862) on port ${spec.port}, IPv4 and IPv6`;
}

/** The command line the SCM starts: `echod service run -- SERVE OPTIONS`, quoted. */
export function binaryPath(spec: ServiceSpec): string {
  return spec.command.map(windowsQuote).join(" ");
}

/**
 * A PowerShell script doing what `echod service install` does: creates or
 * updates the service, sets it to restart on failure, opens the firewall
 * and starts it. Idempotent.
 */
export function renderWindowsScript(spec: ServiceSpec): string {
  const logDir = spec.logFile === undefined ? undefined : parentDir(spec.logFile);
  const rules = firewallRules(spec).map(({ protocol, ports }) =>
    `New-NetFirewallRule -DisplayName '${SERVICE_NAME}' -Direction Inbound -Protocol ${protocol} -LocalPort ${
      ports.join(",")
    } -Action Allow | Out-Null`
  );
  return `# echod: TCP echo server (RFC 862) as a Windows service.
# Starts at boot as LocalSystem, restarts on failure${
    spec.logFile === undefined ? "" : `, logs to ${spec.logFile}`
  }.
# Run as Administrator: powershell -ExecutionPolicy Bypass -File install-echod.ps1
# (echod service install does the same without PowerShell.)
$ErrorActionPreference = 'Stop'
${
    logDir === undefined
      ? ""
      : `New-Item -ItemType Directory -Force -Path ${psQuote(logDir)} | Out-Null\n`
  }$binPath = ${psQuote(binaryPath(spec))}
$service = Get-CimInstance Win32_Service -Filter "Name='${SERVICE_NAME}'"
if ($service) {
  Stop-Service -Name '${SERVICE_NAME}'
  $result = $service | Invoke-CimMethod -MethodName Change -Arguments @{ PathName = $binPath; StartMode = 'Automatic'; DisplayName = ${
    psQuote(DISPLAY_NAME)
  } }
  if ($result.ReturnValue -ne 0) { throw "updating the service failed: $($result.ReturnValue)" }
  Set-Service -Name '${SERVICE_NAME}' -Description ${psQuote(description(spec))}
} else {
  New-Service -Name '${SERVICE_NAME}' -BinaryPathName $binPath -DisplayName ${
    psQuote(DISPLAY_NAME)
  } -Description ${psQuote(description(spec))} -StartupType Automatic | Out-Null
}
sc.exe failure ${SERVICE_NAME} reset= ${RESET_PERIOD} actions= ${
    RESTART_DELAYS.map((delay) => `restart/${delay}`).join("/")
  } | Out-Null
sc.exe failureflag ${SERVICE_NAME} 1 | Out-Null
Remove-NetFirewallRule -DisplayName '${SERVICE_NAME}' -ErrorAction SilentlyContinue
${rules.join("\n")}${rules.length > 0 ? "\n" : ""}Start-Service -Name '${SERVICE_NAME}'
Write-Output 'echod is installed and running (Get-Service ${SERVICE_NAME})'
`;
}

/** Installs (or updates) and starts, removes, queries, starts, stops or restarts the service. */
export async function windows(config: ServiceConfig, spec: ServiceSpec): Promise<number> {
  const logDir = spec.logFile === undefined ? undefined : parentDir(spec.logFile);
  requirePermission(`echod service ${config.action}`, [
    { name: "ffi" },
    ...(config.action === "install" && logDir !== undefined
      ? [{ name: "write" as const, path: logDir }]
      : []),
    ...(config.action === "install" || config.action === "uninstall"
      ? [{ name: "run" as const, command: "netsh.exe" }]
      : []),
  ]);
  // FFI is loaded only here, so that no other command needs --allow-ffi.
  const scm = await import("./scm.ts");
  const manager = new scm.ServiceManager();
  let service: Service | undefined;
  try {
    service = manager.open(SERVICE_NAME);
    switch (config.action) {
      case "install": {
        if (logDir !== undefined) await makeDir(logDir);
        const definition = {
          displayName: DISPLAY_NAME,
          description: description(spec),
          binaryPath: binaryPath(spec),
          restartDelays: RESTART_DELAYS,
          resetPeriod: RESET_PERIOD,
        };
        const updating = service !== undefined;
        if (service !== undefined) {
          await stopped(service, spec.drainTimeout);
          service.reconfigure(definition);
        } else {
          service = manager.create(SERVICE_NAME, definition);
        }
        // Once, after either: the description and the restarts on failure.
        if (!service.describe(definition)) {
          console.error(
            "echod: note: this service manager does not take the failure-actions flag: " +
              "echod is restarted after a crash, not after an exit with an error",
          );
        }
        await openFirewall(spec);
        const state = await started(service, spec);
        console.log(
          `echod is ${
            updating ? "updated and restarted" : "installed and running"
          } as the Windows service ${SERVICE_NAME} (pid ${state.pid}; sc query ${SERVICE_NAME})`,
        );
        return 0;
      }
      case "uninstall": {
        if (service === undefined) {
          console.log(`echod is not installed as a service: nothing to remove`);
          return 0;
        }
        await stopped(service, spec.drainTimeout);
        service.delete();
        await manage(
          "netsh.exe",
          ["advfirewall", "firewall", "delete", "rule", `name=${SERVICE_NAME}`],
          { mayFail: true },
        );
        console.log("echod is stopped and removed");
        return 0;
      }
      case "start":
      case "stop":
      case "restart": {
        if (service === undefined) throw new RuntimeError(NOT_INSTALLED);
        await control(service, config.action, spec);
        return 0;
      }
      default: {
        if (service === undefined) {
          console.log(`${SERVICE_NAME}: not installed (echod service install)`);
          return 4;
        }
        const state = service.query();
        console.log(
          `${SERVICE_NAME}: ${state.stateName}` +
            (state.pid === 0 ? "" : ` (pid ${state.pid})`) +
            (state.stateName === "STOPPED" ? `, last exit: ${scm.lastExit(state)}` : ""),
        );
        // As systemctl status: 0 when running, 3 when not.
        return state.stateName === "RUNNING" ? 0 : 3;
      }
    }
  } finally {
    service?.close();
    manager.close();
  }
}

/** Starts, stops or restarts the installed service, and says what it is now. */
async function control(service: Service, action: ControlAction, spec: ServiceSpec): Promise<void> {
  if (action !== "start") await stopped(service, spec.drainTimeout);
  if (action === "stop") {
    reportControl(action, ` (sc query ${SERVICE_NAME})`);
    return;
  }
  const state = await started(service, spec);
  reportControl(action, ` (pid ${state.pid}; sc query ${SERVICE_NAME})`);
}

/** Starts the service (nothing to do when it runs) and waits until it reports RUNNING. */
async function started(service: Service, spec: ServiceSpec): Promise<ServiceState> {
  service.start();
  const state = await waitWhile(service, "START_PENDING", START_TIMEOUT);
  if (state.stateName !== "RUNNING") {
    const { lastExit } = await import("./scm.ts");
    throw new RuntimeError(
      `the service ${SERVICE_NAME} did not start (${state.stateName}, ${lastExit(state)})` +
        (spec.logFile === undefined ? "" : `: see ${spec.logFile}`),
    );
  }
  return state;
}

/** Asks a running service to stop and waits for it to drain (up to drain timeout + 30 s). */
async function stopped(service: Service, drainTimeout: number): Promise<void> {
  if (service.query().stateName === "STOPPED") return;
  service.stop();
  const state = await waitWhile(service, "STOP_PENDING", drainTimeout + 30_000);
  if (state.stateName !== "STOPPED") {
    throw new RuntimeError(
      `the service ${SERVICE_NAME} did not stop (${state.stateName}): try again, or end its process`,
    );
  }
}

/** Polls the SCM (it has no way to wait) while the service is in `state`. */
async function waitWhile(
  service: Service,
  state: string,
  timeout: number,
): Promise<ServiceState> {
  const deadline = Date.now() + timeout;
  let now = service.query();
  while (now.stateName === state && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    now = service.query();
  }
  return now;
}

/** The inbound firewall rules the service needs: its TCP ports, and UDP ones. */
function firewallRules(spec: ServiceSpec): { protocol: "TCP" | "UDP"; ports: number[] }[] {
  return [
    { protocol: "TCP" as const, ports: spec.tcpPorts },
    { protocol: "UDP" as const, ports: spec.udpPorts },
  ].filter((rule) => rule.ports.length > 0);
}

/** Replaces the firewall rule; where netsh has no firewall (Wine), says so and goes on. */
async function openFirewall(spec: ServiceSpec): Promise<void> {
  await manage("netsh.exe", ["advfirewall", "firewall", "delete", "rule", `name=${SERVICE_NAME}`], {
    mayFail: true,
  });
  for (const { protocol, ports } of firewallRules(spec)) {
    try {
      await manage("netsh.exe", [
        "advfirewall",
        "firewall",
        "add",
        "rule",
        `name=${SERVICE_NAME}`,
        "dir=in",
        "action=allow",
        `protocol=${protocol}`,
        `localport=${ports.join(",")}`,
      ]);
    } catch (error) {
      console.error(`echod: note: the firewall rule was not added: ${(error as Error).message}`);
    }
  }
}

async function makeDir(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (error) {
    throw new RuntimeError(`creating ${dir} failed: ${(error as Error).message}`);
  }
}

/** Quotes text for a PowerShell single-quoted string. */
function psQuote(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** Quotes one argument for a Windows command line (CommandLineToArgvW rules). */
function windowsQuote(arg: string): string {
  if (arg !== "" && !/[\s"]/.test(arg)) return arg;
  return `"${arg.replace(/(\\*)"/g, '$1$1\\"').replace(/(\\+)$/, "$1$1")}"`;
}
