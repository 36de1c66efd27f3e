/**
 * systemd: the unit echod is installed as, and installing, removing and
 * querying it with systemctl.
 *
 * @module
 */

import type { ServiceConfig } from "./spec.ts";
import {
  CREDENTIALS_DIR,
  descriptorLimit,
  parentDir,
  SERVICE_NAME,
  type ServiceSpec,
} from "./spec.ts";
import {
  exists,
  manage,
  needPermissions,
  passThrough,
  removeFile,
  reportControl,
  writeIfChanged,
} from "./system.ts";

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

/** Quotes one ExecStart word for systemd: `%` and `$` escaped, spaces quoted. */
export function systemdQuote(word: string): string {
  const escaped = word.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/%/g, "%%")
    .replace(/\$/g, "$$$$");
  return /[\s"'\\;]/.test(word) || word === "" ? `"${escaped}"` : escaped;
}

/** Installs, removes, queries, starts, stops or restarts the unit (`config.root`: into an offline root). */
export async function systemd(config: ServiceConfig, spec: ServiceSpec): Promise<number> {
  const root = config.root ?? "";
  const unitDir = `${root}/etc/systemd/system`;
  const unitPath = `${unitDir}/${SERVICE_NAME}.service`;
  const unit = `${SERVICE_NAME}.service`;
  const offline = root === "" ? [] : [`--root=${root}`];
  needPermissions(config.action, unitPath, "systemctl");
  switch (config.action) {
    case "install": {
      const changed = await writeIfChanged(unitDir, unitPath, renderSystemdUnit(spec));
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
    case "start":
    case "stop":
    case "restart": {
      // systemctl says "Unit echod.service not found." (start) or "… not loaded." (stop).
      await manage("systemctl", [config.action, unit], {
        notInstalled: /unit \S+ not (found|loaded)/i,
      });
      reportControl(config.action, ` (systemctl status ${SERVICE_NAME})`);
      return 0;
    }
    default:
      return await passThrough("systemctl", ["status", "--no-pager", unit]);
  }
}
