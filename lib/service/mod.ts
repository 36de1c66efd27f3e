/**
 * The `service` command: prints, installs, removes or queries echod as a
 * system service, with the serve options given after `--`.
 *
 * @module
 */

import type { ServiceConfig } from "./spec.ts";
import { launchd, renderLaunchdPlist } from "./launchd.ts";
import { type ServiceKind, type ServiceSpec, serviceSpec } from "./spec.ts";
import { renderSystemdUnit, systemd } from "./systemd.ts";
import { renderWindowsScript, windows } from "./windows.ts";

/** Runs the service action and returns the exit code. */
export async function runService(config: ServiceConfig): Promise<number> {
  if (config.action === "run") {
    // The Windows service manager starting echod.
    return await (await import("./windows_service.ts")).runWindowsService(config.serve);
  }
  const spec = serviceSpec(config.kind, config);
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
