/**
 * Service definitions for echod: a hardened systemd unit (Linux), a launchd
 * daemon plist (macOS), and a PowerShell script registering a Task Scheduler
 * task (Windows). Rendering only: nothing here touches the system.
 *
 * Why a scheduled task on Windows: the Service Control Manager expects a
 * service program to answer its control requests, which a console program
 * (Deno's included) cannot, so `sc.exe create` fails with error 1053. A task
 * with a boot trigger, run as SYSTEM, with no time limit and restart on
 * failure, starts at boot and is restarted by Windows itself, with nothing
 * to download. Its one cost: stopping it terminates the process, so open
 * connections are reset rather than drained.
 *
 * @module
 */

/** The service managers echod can be installed under. */
export type ServiceKind = "systemd" | "launchd" | "windows";

/** The kinds, for the command line. */
export const SERVICE_KINDS: readonly ServiceKind[] = ["systemd", "launchd", "windows"];

/** The service name (systemd unit, Windows task). */
export const SERVICE_NAME = "echod";

/** The launchd label. */
export const LAUNCHD_LABEL = "dev.echod";

/** Where the Windows service logs, since Windows has no journal to catch stderr. */
export const WINDOWS_LOG_FILE = "C:\\ProgramData\\echod\\echod.log";

/** Where the macOS daemon's stderr goes. */
export const LAUNCHD_LOG_FILE = "/var/log/echod/echod.log";

// Stands for systemd's credentials directory in a command; rendered as the
// specifier %d after quoting (which would otherwise escape the %).
const CREDENTIALS_DIR = "\u0001credentials\u0001";

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

/** Renders the service definition of `kind`. */
export function renderService(kind: ServiceKind, spec: ServiceSpec): string {
  switch (kind) {
    case "systemd":
      return renderSystemdUnit(spec);
    case "launchd":
      return renderLaunchdPlist(spec);
    case "windows":
      return renderWindowsScript(spec);
  }
}

/**
 * A systemd unit, sandboxed: a dynamic user, read-only system, no home, no
 * capabilities (but `CAP_NET_BIND_SERVICE` for a port below 1024), only IP
 * and Unix sockets, the system calls of an ordinary service (a blocked one
 * fails with EPERM rather than killing echod), no view of other processes.
 * `systemd-analyze security` rates it 1.1 (1.4 with a port below 1024,
 * where `PrivateUsers=` would take the capability away). Left off:
 * `MemoryDenyWriteExecute` (V8's JIT writes code pages), `PrivateNetwork`
 * and `IPAddressDeny` (it serves the network). The system call set was
 * checked against `strace -f` of echod serving TCP, TLS, UDP and metrics.
 */
export function renderSystemdUnit(spec: ServiceSpec): string {
  const privileged = spec.port > 0 && spec.port < 1024;
  const lines = [
    "# echod: TCP echo server (RFC 862). Written by `echod service install`.",
    "[Unit]",
    "Description=echod TCP echo server (RFC 862)",
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    `ExecStart=${spec.command.map(systemdQuote).join(" ").replaceAll(CREDENTIALS_DIR, "%d")}`,
    "ExecReload=/bin/kill -HUP $MAINPID",
    "Restart=on-failure",
    "RestartSec=2s",
    "KillSignal=SIGTERM",
    `TimeoutStopSec=${Math.ceil(spec.drainTimeout / 1_000) + 5}s`,
    `LimitNOFILE=${descriptorLimit(spec.maxConns)}`,
    "DynamicUser=yes",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "SystemCallArchitectures=native",
    // V8 probes memory protection keys; @system-service predates them in older systemd.
    "SystemCallFilter=@system-service pkey_alloc pkey_free pkey_mprotect",
    "SystemCallFilter=~@privileged @resources",
    "SystemCallErrorNumber=EPERM",
    "ProtectProc=invisible",
    "ProcSubset=pid",
    "PrivateMounts=yes",
    ...(privileged ? [] : ["PrivateUsers=yes"]),
    "DevicePolicy=closed",
    "UMask=0077",
    privileged ? "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" : "CapabilityBoundingSet=",
    privileged ? "AmbientCapabilities=CAP_NET_BIND_SERVICE" : "AmbientCapabilities=",
  ];
  if (spec.logFile !== undefined) {
    lines.push(`ReadWritePaths=${systemdQuote(parentDir(spec.logFile))}`);
  }
  for (const [name, path] of Object.entries(spec.credentials ?? {})) {
    lines.push(`LoadCredential=${name}:${systemdQuote(path)}`);
  }
  if (spec.viaDeno) {
    // A dynamic user has no home: give Deno a cache of its own.
    lines.push("CacheDirectory=echod", "Environment=DENO_DIR=%C/echod");
  }
  lines.push(
    "StandardOutput=journal",
    "StandardError=journal",
    "SyslogIdentifier=echod",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  );
  return lines.join("\n");
}

/** A launchd daemon: started at boot, kept alive, run as `nobody`, stderr to a log file. */
export function renderLaunchdPlist(spec: ServiceSpec): string {
  const limit = descriptorLimit(spec.maxConns);
  const args = spec.command.map((a) => `    <string>${xmlEscape(a)}</string>`).join("\n");
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- echod: TCP echo server (RFC 862). Written by echod service install. -->
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>${LAUNCHD_LABEL}</string>
  <key>ProgramArguments</key>
  <array>
${args}
  </array>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <true/>
  <key>UserName</key>
  <string>${spec.port > 0 && spec.port < 1024 ? "root" : "nobody"}</string>
  <key>ExitTimeOut</key>
  <integer>${Math.ceil(spec.drainTimeout / 1_000) + 5}</integer>
  <key>SoftResourceLimits</key>
  <dict>
    <key>NumberOfFiles</key>
    <integer>${limit}</integer>
  </dict>
  <key>HardResourceLimits</key>
  <dict>
    <key>NumberOfFiles</key>
    <integer>${limit}</integer>
  </dict>
  <key>StandardOutPath</key>
  <string>${LAUNCHD_LOG_FILE}</string>
  <key>StandardErrorPath</key>
  <string>${LAUNCHD_LOG_FILE}</string>
</dict>
</plist>
`;
}

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

/** Quotes one ExecStart word for systemd: `%` and `$` escaped, spaces quoted. */
export function systemdQuote(word: string): string {
  const escaped = word.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/%/g, "%%")
    .replace(/\$/g, "$$$$");
  return /[\s"'\\;]/.test(word) || word === "" ? `"${escaped}"` : escaped;
}

/** Quotes one argument for a Windows command line (CommandLineToArgvW rules). */
function windowsQuote(arg: string): string {
  if (arg !== "" && !/[\s"]/.test(arg)) return arg;
  return `"${arg.replace(/(\\*)"/g, '$1$1\\"').replace(/(\\+)$/, "$1$1")}"`;
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function parentDir(path: string): string {
  const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return cut <= 0 ? (cut === 0 ? "/" : ".") : path.slice(0, cut);
}
