/**
 * launchd (macOS): the daemon echod is installed as, and installing,
 * removing and querying it with launchctl.
 *
 * @module
 */

import { RuntimeError } from "../errors.ts";
import type { ControlAction, ServiceConfig } from "./spec.ts";
import {
  descriptorLimit,
  LAUNCHD_LABEL,
  LAUNCHD_LOG_FILE,
  type ServiceSpec,
  xmlEscape,
} from "./spec.ts";
import {
  exists,
  manage,
  needPermissions,
  NOT_INSTALLED,
  passThrough,
  removeFile,
  reportControl,
  succeeds,
  writeIfChanged,
} from "./system.ts";

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

/**
 * The launchctl commands that start, stop or restart the daemon, given
 * whether launchd has it loaded. With `KeepAlive`, killing the process
 * would only restart it: stopping unloads the job (`bootout`), and
 * starting an unloaded one loads it again from its plist (`bootstrap`).
 */
export function launchctlSteps(
  action: ControlAction,
  options: { loaded: boolean; plistPath: string },
): string[][] {
  const target = `system/${LAUNCHD_LABEL}`;
  if (action === "stop") return options.loaded ? [["bootout", target]] : [];
  if (!options.loaded) return [["bootstrap", "system", options.plistPath]];
  // kickstart starts a loaded job that is not running; -k kills a running one first.
  return action === "restart" ? [["kickstart", "-k", target]] : [["kickstart", target]];
}

/** Installs, removes, queries, starts, stops or restarts the daemon. */
export async function launchd(config: ServiceConfig, spec: ServiceSpec): Promise<number> {
  const plistPath = `/Library/LaunchDaemons/${LAUNCHD_LABEL}.plist`;
  const target = `system/${LAUNCHD_LABEL}`;
  needPermissions(config.action, plistPath, "launchctl");
  switch (config.action) {
    case "install": {
      await writeIfChanged("/Library/LaunchDaemons", plistPath, renderLaunchdPlist(spec));
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
    case "start":
    case "stop":
    case "restart": {
      if (!(await exists(plistPath))) throw new RuntimeError(NOT_INSTALLED);
      const loaded = await succeeds("launchctl", ["print", target]);
      for (const args of launchctlSteps(config.action, { loaded, plistPath })) {
        await manage("launchctl", args);
      }
      reportControl(config.action, ` (launchctl print ${target})`);
      return 0;
    }
    default:
      return await passThrough("launchctl", ["print", target]);
  }
}
