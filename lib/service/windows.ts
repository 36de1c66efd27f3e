/**
 * Windows: the scheduled task echod is installed as (the README says why a
 * task), and the PowerShell that registers, removes or queries it.
 *
 * @module
 */

import type { ServiceConfig } from "./spec.ts";
import { parentDir, SERVICE_NAME, type ServiceSpec, WINDOWS_LOG_FILE, xmlEscape } from "./spec.ts";
import { manage, needPermissions, passThrough } from "./system.ts";

/** The Task Scheduler definition (XML) the Windows script registers. */
export function renderWindowsTaskXml(spec: ServiceSpec): string {
  const [program, ...args] = spec.command;
  return `<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.4" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>echod TCP echo server (RFC 862)</Description>
  </RegistrationInfo>
  <Triggers>
    <BootTrigger>
      <Enabled>true</Enabled>
    </BootTrigger>
  </Triggers>
  <Principals>
    <Principal id="System">
      <UserId>S-1-5-18</UserId>
      <RunLevel>HighestAvailable</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <StartWhenAvailable>true</StartWhenAvailable>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>999</Count>
    </RestartOnFailure>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <AllowHardTerminate>true</AllowHardTerminate>
    <Enabled>true</Enabled>
  </Settings>
  <Actions Context="System">
    <Exec>
      <Command>${xmlEscape(program)}</Command>
      <Arguments>${xmlEscape(args.map(windowsQuote).join(" "))}</Arguments>
    </Exec>
  </Actions>
</Task>
`;
}

/**
 * A PowerShell script that registers and starts the task, opens the port in
 * Windows Firewall, and creates the log directory. Idempotent.
 */
export function renderWindowsScript(spec: ServiceSpec): string {
  const xml = renderWindowsTaskXml(spec);
  return `# echod: TCP echo server (RFC 862) as a Windows scheduled task.
# Starts at boot as SYSTEM, restarts on failure, logs to ${WINDOWS_LOG_FILE}.
# Run as Administrator: powershell -ExecutionPolicy Bypass -File install-echod.ps1
$ErrorActionPreference = 'Stop'
New-Item -ItemType Directory -Force -Path '${parentDir(WINDOWS_LOG_FILE)}' | Out-Null
$xml = @'
${xml}'@
Stop-ScheduledTask -TaskName '${SERVICE_NAME}' -ErrorAction SilentlyContinue
Register-ScheduledTask -TaskName '${SERVICE_NAME}' -Xml $xml -Force | Out-Null
if (-not (Get-NetFirewallRule -DisplayName '${SERVICE_NAME}' -ErrorAction SilentlyContinue)) {
  New-NetFirewallRule -DisplayName '${SERVICE_NAME}' -Direction Inbound -Protocol TCP -LocalPort ${spec.port} -Action Allow | Out-Null
}
Start-ScheduledTask -TaskName '${SERVICE_NAME}'
Write-Output 'echod is installed and started (scheduled task "${SERVICE_NAME}")'
`;
}

/** The PowerShell script that stops and removes the task and its firewall rule. */
export function renderWindowsUninstallScript(): string {
  return `$ErrorActionPreference = 'Stop'
Stop-ScheduledTask -TaskName '${SERVICE_NAME}' -ErrorAction SilentlyContinue
Unregister-ScheduledTask -TaskName '${SERVICE_NAME}' -Confirm:$false -ErrorAction SilentlyContinue
Remove-NetFirewallRule -DisplayName '${SERVICE_NAME}' -ErrorAction SilentlyContinue
Write-Output 'echod is stopped and removed'
`;
}

/** Quotes one argument for a Windows command line (CommandLineToArgvW rules). */
function windowsQuote(arg: string): string {
  if (arg !== "" && !/[\s"]/.test(arg)) return arg;
  return `"${arg.replace(/(\\*)"/g, '$1$1\\"').replace(/(\\+)$/, "$1$1")}"`;
}

/** Installs, removes or queries the task. */
export async function windows(config: ServiceConfig, spec: ServiceSpec): Promise<number> {
  needPermissions(config.action, undefined, "powershell.exe");
  const script = config.action === "install"
    ? renderWindowsScript(spec)
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
