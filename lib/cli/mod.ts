/**
 * The command line: `echod [serve] [options]`, `echod client HOST:PORT`,
 * `echod bench HOST:PORT`, `echod service ACTION`, `--help` and
 * `--version`. Parsing turns argv into a {@linkcode Command} or throws
 * {@linkcode UsageError} with one line that says what was wrong and what to
 * do. Each command's options live in a file of their own; `options.ts` is
 * the engine they share. Nothing here reads the environment or the file
 * system.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import type { BenchConfig } from "../bench/options.ts";
import type { ClientConfig } from "../client/mod.ts";
import type { Target } from "../net.ts";
import type { ServeConfig } from "../serve/options.ts";
import type { ServiceConfig } from "../service/spec.ts";
import { parseTarget } from "./addresses.ts";
import { BENCH, benchConfig } from "./bench.ts";
import { CLIENT, clientConfig } from "./client.ts";
import { helpText } from "./help.ts";
import { readEnvironment } from "./environment.ts";
import { type CommandSpec, hint, type OptionValues, readOptions } from "./options.ts";
import { SERVE } from "./serve.ts";
import { serveConfig } from "./serve_config.ts";
import { SERVICE, serviceConfig } from "./service.ts";

export { parseTarget };

/** What the command line asks for. */
export type Command =
  | { kind: "help"; text: string }
  | { kind: "version" }
  | { kind: "serve"; config: ServeConfig }
  | { kind: "client"; config: ClientConfig }
  | { kind: "bench"; config: BenchConfig }
  | { kind: "service"; config: ServiceConfig };

/** Every command's option table, for help and for "it belongs to echod X" hints. */
export const COMMANDS: readonly CommandSpec[] = [SERVE, CLIENT, BENCH, SERVICE];
const COMMAND_NAMES = [...COMMANDS.map((c) => c.name), "help"];

/**
 * Parses `args` (without the program name). Throws {@linkcode UsageError}
 * for anything that cannot be run as written.
 */
export function parseCommandLine(args: string[]): Command {
  let spec = SERVE;
  let rest = args;
  const first = args[0];
  if (first !== undefined && !first.startsWith("-")) {
    if (first === "help") {
      const topic = COMMANDS.find((c) => c.name === args[1]);
      return { kind: "help", text: helpText(topic ?? SERVE) };
    }
    const named = COMMANDS.find((c) => c.name === first);
    if (named === undefined) {
      const near = hint(first, COMMAND_NAMES, "");
      throw new UsageError(
        `unknown command '${first}'${near || `: commands are ${COMMAND_NAMES.join(", ")}`}`,
      );
    }
    spec = named;
    rest = args.slice(1);
  }
  // Service: what follows `--` are the serve options the service runs with.
  let serveArgs: string[] = [];
  if (spec === SERVICE) {
    const cut = rest.indexOf("--");
    if (cut !== -1) {
      serveArgs = rest.slice(cut + 1);
      rest = rest.slice(0, cut);
    }
  }
  const { values: opts, positionals } = readOptions(rest, spec, { commands: COMMANDS });
  if (opts.has("help")) return { kind: "help", text: helpText(spec) };
  if (opts.has("version")) return { kind: "version" };
  switch (spec.name) {
    case "serve":
      if (positionals.length > 0) {
        throw new UsageError(`unexpected argument '${positionals[0]}': options start with --`);
      }
      return { kind: "serve", config: serveFromEnvironment(opts) };
    case "client":
      return { kind: "client", config: clientConfig(oneTarget(spec, positionals), opts) };
    case "bench":
      return { kind: "bench", config: benchConfig(oneTarget(spec, positionals), opts) };
    case "service":
      return { kind: "service", config: serviceConfig(positionals, serveArgs, opts) };
  }
}

/** The serve options with `ECHOD_*` variables filling in what the flags left out. */
function serveFromEnvironment(opts: OptionValues): ServeConfig {
  const environment = readEnvironment(SERVE, opts.names());
  const config = serveConfig(opts.with(environment));
  return { ...config, notes: [...environment.notes, ...(config.notes ?? [])] };
}

function oneTarget(spec: CommandSpec, positionals: string[]): Target {
  if (positionals.length === 0) {
    throw new UsageError(`echod ${spec.name} needs a server to talk to: ${spec.usage}`);
  }
  if (positionals.length > 1) {
    throw new UsageError(`unexpected argument '${positionals[1]}': ${spec.usage}`);
  }
  return parseTarget(positionals[0]);
}
