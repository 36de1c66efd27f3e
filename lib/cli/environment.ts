/**
 * Options from the environment: `ECHOD_<OPTION>` for every option of a
 * command (`ECHOD_PORT`, `ECHOD_MAX_CONNS`, `ECHOD_TLS_CERT`, …), as
 * containers and Kubernetes configure programs. A flag wins over its
 * variable. Variables are read only where Deno already allows it, so
 * `deno run --allow-net main.ts` never prompts: what was skipped is told
 * to the caller, to log once at debug level.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { type CommandSpec, hint, type OptionSpec } from "./options.ts";

/** What {@linkcode readEnvironment} found. */
export interface EnvironmentOptions {
  /** Values by option name, in the form the command line gives them. */
  values: Map<string, string[]>;
  /** The variable each value came from, by option name. */
  sources: Map<string, string>;
  /** Notes for the log once it is set up (variables skipped or not understood). */
  notes: { level: "debug" | "warning"; message: string }[];
}

// Options that only make sense on a command line.
const NOT_FROM_ENVIRONMENT = new Set(["help", "version"]);

const TRUE = new Set(["1", "true", "yes", "on"]);
const FALSE = new Set(["0", "false", "no", "off"]);

/** `--max-conns` → `ECHOD_MAX_CONNS`. */
export function variableName(option: string): string {
  return `ECHOD_${option.toUpperCase().replaceAll("-", "_")}`;
}

/**
 * Reads `ECHOD_<OPTION>` for each of `spec`'s options not in `given` (the
 * command line's), where the variable may be read without a prompt.
 * Repeatable options take a comma-separated list (`;` for `--fault`,
 * whose values hold commas); yes/no options take
 * true/false (1/0, yes/no, on/off). Throws {@linkcode UsageError} naming
 * the variable for a value that cannot be one.
 */
export function readEnvironment(
  spec: CommandSpec,
  given: ReadonlySet<string>,
): EnvironmentOptions {
  const found: EnvironmentOptions = { values: new Map(), sources: new Map(), notes: [] };
  const skipped: string[] = [];
  for (const option of spec.options) {
    if (NOT_FROM_ENVIRONMENT.has(option.name) || given.has(option.name)) continue;
    const variable = variableName(option.name);
    if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") {
      skipped.push(variable);
      continue;
    }
    const text = Deno.env.get(variable)?.trim();
    // Set but empty is how a manifest leaves a value out.
    if (text === undefined || text === "") continue;
    const values = optionValues(option, variable, text);
    if (values === undefined) continue;
    found.values.set(option.name, values);
    found.sources.set(option.name, variable);
  }
  if (skipped.length > 0) {
    found.notes.push({
      level: "debug",
      message: `ECHOD_* variables not read (${
        skipped.length === spec.options.length - NOT_FROM_ENVIRONMENT.size
          ? "no --allow-env"
          : `no --allow-env for ${skipped.join(", ")}`
      }): options come from the command line only`,
    });
  }
  found.notes.push(...strayVariables(spec));
  return found;
}

/** The option's values as argv would give them, or `undefined` for "off". */
function optionValues(option: OptionSpec, variable: string, text: string): string[] | undefined {
  // A Service named "echod" makes Kubernetes set ECHOD_PORT=tcp://IP:PORT
  // (and ECHOD_SERVICE_HOST, …) in every pod of its namespace.
  if (/^(tcp|udp|sctp):\/\//.test(text)) {
    throw new UsageError(
      `${variable}='${text}' is a Kubernetes service link, not an echod value: ` +
        `set enableServiceLinks: false in the pod spec`,
    );
  }
  if (option.kind === "boolean") {
    const word = text.toLowerCase();
    if (FALSE.has(word)) return undefined;
    if (TRUE.has(word)) return [option.optionalValue === undefined ? "true" : ""];
    if (option.optionalValue !== undefined) return [text];
    throw new UsageError(`${variable} '${text}' is not true or false`);
  }
  if (!option.multiple) return [text];
  return text.split(option.separator ?? ",").map((part) => part.trim()).filter((part) =>
    part !== ""
  );
}

/**
 * `ECHOD_` variables that name no option (a typo), when the whole
 * environment may be read; Kubernetes' service links are not typos.
 */
function strayVariables(spec: CommandSpec): EnvironmentOptions["notes"] {
  if (Deno.permissions.querySync({ name: "env" }).state !== "granted") return [];
  const known = new Set(spec.options.map((option) => variableName(option.name)));
  return Object.keys(Deno.env.toObject())
    .filter((name) =>
      name.startsWith("ECHOD_") && !known.has(name) &&
      !/^ECHOD_(SERVICE_|PORT_\d|TEST_)/.test(name)
    )
    .sort()
    .map((name) => ({
      level: "warning",
      message: `${name} is not an echod setting and is ignored${hint(name, [...known], "")}`,
    }));
}
