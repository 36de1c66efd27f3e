/**
 * `echod service`: its options and what they parse into, the serve options
 * after `--` included.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import {
  hostServiceKind,
  isControl,
  SERVICE_KINDS,
  type ServiceAction,
  type ServiceConfig,
  type ServiceKind,
} from "../service/spec.ts";
import { type CommandSpec, HELP, hint, type OptionValues, readOptions } from "./options.ts";
import { SERVE } from "./serve.ts";
import { serveConfig } from "./serve_config.ts";

/** The service command's options. */
export const SERVICE: CommandSpec = {
  name: "service",
  summary: "install echod as a system service (systemd, launchd, Windows service)",
  usage:
    "echod service install|uninstall|status|start|stop|restart|print|run [systemd|launchd|windows] [-- SERVE OPTIONS]",
  target: false,
  options: [
    {
      name: "root",
      kind: "string",
      value: "DIR",
      help: "systemd: install into this root file system (an image) instead of the running system",
    },
    HELP,
  ],
  examples: [
    "sudo echod service install -- --port 7007 --max-conns 20000",
    "echod service print launchd -- --port 7007",
    "sudo echod service status",
    "sudo echod service restart",
    "sudo echod service uninstall",
    "echod service run -- --port 7007   (Windows: how the service manager starts echod)",
  ],
};

const SERVICE_ACTIONS: readonly ServiceAction[] = [
  "install",
  "uninstall",
  "status",
  "start",
  "stop",
  "restart",
  "print",
  "run",
];

/** How each action reads in "a KIND service cannot be …" (English participles are irregular). */
const DONE: Record<ServiceAction, string> = {
  install: "installed",
  uninstall: "uninstalled",
  status: "queried",
  start: "started",
  stop: "stopped",
  restart: "restarted",
  print: "printed",
  run: "run",
};

/**
 * Turns the positionals (action, kind), the serve options after `--` and
 * the values read against {@linkcode SERVICE} into a {@linkcode ServiceConfig}.
 */
export function serviceConfig(
  positionals: string[],
  serveArgs: string[],
  opts: OptionValues,
): ServiceConfig {
  const [action, kindText, extra] = positionals;
  if (action === undefined) {
    throw new UsageError(`echod service needs an action: ${SERVICE.usage}`);
  }
  if (!(SERVICE_ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError(
      `unknown service action '${action}'${
        hint(action, SERVICE_ACTIONS, "") || `: use ${SERVICE_ACTIONS.join(", ")}`
      }`,
    );
  }
  if (extra !== undefined) {
    throw new UsageError(`unexpected argument '${extra}': serve options go after --`);
  }
  const host = hostServiceKind();
  let kind = host;
  if (kindText !== undefined) {
    if (!(SERVICE_KINDS as readonly string[]).includes(kindText)) {
      throw new UsageError(
        `unknown service kind '${kindText}': use ${SERVICE_KINDS.join(", ")}${
          kindText.startsWith("-") ? " (serve options go after --)" : ""
        }`,
      );
    }
    kind = kindText as ServiceKind;
    if (action !== "print" && kind !== host) {
      throw new UsageError(
        `a ${kind} service cannot be ${DONE[action as ServiceAction]} on ${Deno.build.os}: ` +
          `this host uses ${host} (echod service print ${kind} shows the file)`,
      );
    }
  }
  if (action === "run" && host !== "windows") {
    throw new UsageError(
      `echod service run is how the Windows service manager starts echod; on ${Deno.build.os}, use echod serve`,
    );
  }
  const root = opts.path("root");
  if (root !== undefined && kind !== "systemd") {
    throw new UsageError("--root is for systemd only");
  }
  if (root !== undefined && isControl(action as ServiceAction)) {
    throw new UsageError(
      `--root installs into an image, where nothing runs: echod service ${action} is for the running system`,
    );
  }
  const serve = readOptions(serveArgs, SERVE);
  if (serve.values.has("help") || serve.values.has("version")) {
    throw new UsageError(
      "the options after -- are serve options; --help and --version do not belong there",
    );
  }
  if (serve.positionals.length > 0) {
    throw new UsageError(`unexpected argument '${serve.positionals[0]}': options start with --`);
  }
  return {
    action: action as ServiceAction,
    kind,
    serveArgs,
    serve: serveConfig(serve.values),
    root,
  };
}
