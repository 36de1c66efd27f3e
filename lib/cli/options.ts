/**
 * The parsing engine every command shares: option tables, reading argv
 * against one, typed values with the error message for a bad one, and the
 * "did you mean" hints. Nothing here reads the environment or the file
 * system.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";
import { formatDuration, MAX_DURATION, parseDuration, parseSize } from "../units.ts";

/** One option of a command: its name, kind, value placeholder and help line. */
export interface OptionSpec {
  name: string;
  kind: "string" | "boolean";
  short?: string;
  value?: string;
  multiple?: boolean;
  /** A flag that also takes `--name=VALUE` (never a separate argument); names the value. */
  optionalValue?: string;
  /**
   * What separates the values of a repeatable option in its `ECHOD_*`
   * variable, when a value may hold commas itself (default `,`).
   */
  separator?: string;
  help: string;
}

/** The commands. */
export type CommandName = "serve" | "client" | "bench" | "service";

/** A command: its name, usage line, options and examples. */
export interface CommandSpec {
  name: CommandName;
  summary: string;
  usage: string;
  target: boolean;
  options: OptionSpec[];
  examples: string[];
}

/** `-h, --help`, which every command takes. */
export const HELP: OptionSpec = {
  name: "help",
  kind: "boolean",
  short: "h",
  help: "show this help and exit",
};

/** `--expect-greeting`, shared by client and bench. */
export const EXPECT_GREETING: OptionSpec = {
  name: "expect-greeting",
  kind: "boolean",
  help: "the server sends a greeting line first (echod --greeting): set it apart from the echo",
};

/** `--connect-timeout`, shared by client and bench. */
export const CONNECT_TIMEOUT: OptionSpec = {
  name: "connect-timeout",
  kind: "string",
  value: "DURATION",
  help: "give up on a connection not open after this long (default: 5s)",
};

/**
 * Reads `args` against `spec`'s options. Throws {@linkcode UsageError} for
 * an unknown option (naming the command it belongs to among
 * `context.commands`, or a near miss), a missing value or a stray `--`.
 */
export function readOptions(
  args: string[],
  spec: CommandSpec,
  context: { commands: readonly CommandSpec[] } = { commands: [] },
): { values: OptionValues; positionals: string[] } {
  const { tokens } = parseArgs({
    args,
    options: Object.fromEntries(spec.options.map((o) => [o.name, parseArgsSpec(o)])),
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const values = new Map<string, string[]>();
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === "positional") {
      positionals.push(token.value);
      continue;
    }
    if (token.kind !== "option") {
      throw new UsageError(`'--' is not used by echod ${spec.name}`);
    }
    const option = spec.options.find((o) => o.name === token.name);
    if (option === undefined) {
      const elsewhere = context.commands.find((c) =>
        c !== spec && c.options.some((o) => o.name === token.name)
      );
      const where = elsewhere ? ` (it belongs to echod ${elsewhere.name})` : "";
      const near = hint(token.name, spec.options.map((o) => o.name), "--");
      throw new UsageError(`unknown option ${token.rawName}${where || near}`);
    }
    if (option.kind === "boolean") {
      if (option.optionalValue !== undefined) {
        if (token.value === "") {
          throw new UsageError(
            `--${option.name}= needs a value after = (--${option.name}=${option.optionalValue})`,
          );
        }
        // Given alone: an empty value, which the command reads as "the default".
        values.set(option.name, [token.value ?? ""]);
        continue;
      }
      if (token.value !== undefined) throw new UsageError(`--${option.name} takes no value`);
      values.set(option.name, ["true"]);
      continue;
    }
    if (token.value === undefined) {
      throw new UsageError(`--${option.name} needs a value (--${option.name} ${option.value})`);
    }
    values.set(option.name, [...(values.get(option.name) ?? []), token.value]);
  }
  return { values: new OptionValues(values), positionals };
}

/** Typed access to option values, each with the error message for a bad one. */
export class OptionValues {
  #values: Map<string, string[]>;
  #sources: Map<string, string>;

  /**
   * Wraps the values read for each option name; `sources` names where a
   * value came from when not from its flag (an `ECHOD_*` variable).
   */
  constructor(values: Map<string, string[]>, sources: Map<string, string> = new Map()) {
    this.#values = values;
    this.#sources = sources;
  }

  /** The names of the options given. */
  names(): Set<string> {
    return new Set(this.#values.keys());
  }

  /** These values with `more` added for the options not given here. */
  with(more: { values: Map<string, string[]>; sources: Map<string, string> }): OptionValues {
    const values = new Map(more.values);
    const sources = new Map(more.sources);
    for (const [name, given] of this.#values) {
      values.set(name, given);
      sources.delete(name);
    }
    return new OptionValues(values, sources);
  }

  /** How errors name an option's value: `--max-conns`, or `ECHOD_MAX_CONNS` when it came from there. */
  label(name: string): string {
    return this.#sources.get(name) ?? `--${name}`;
  }

  /** Every value given for `name`, in order. */
  all(name: string): string[] {
    return this.#values.get(name) ?? [];
  }

  /** The last value given for `name`. */
  last(name: string): string | undefined {
    return this.#values.get(name)?.at(-1);
  }

  /** Whether `name` was given. */
  has(name: string): boolean {
    return this.#values.has(name);
  }

  /** A whole number of at least `min` (0: "no limit" is then said in the errors). */
  count(name: string, fallback: number, min = 0): number {
    const text = this.last(name);
    if (text === undefined) return fallback;
    if (/^-\d+$/.test(text)) {
      throw new UsageError(
        `${this.label(name)} must not be negative (got ${text})${
          min === 0 ? "; 0 means no limit" : ""
        }`,
      );
    }
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
      throw new UsageError(
        `${this.label(name)} '${text}' is not a whole number${
          min === 0 ? "; 0 means no limit" : ""
        }`,
      );
    }
    const n = Number(text);
    if (n < min) throw new UsageError(`${this.label(name)} must be at least ${min} (got ${text})`);
    return n;
  }

  /**
   * A duration in milliseconds: 0 (off), or from `min` up to the longest
   * timer the runtime can set (596h); anything else is refused with the range.
   */
  time(name: string, fallback: number, min = 1): number {
    const text = this.last(name);
    if (text === undefined) return fallback;
    if (text.startsWith("-")) {
      throw new UsageError(`${this.label(name)} must not be negative (got ${text})`);
    }
    const ms = parseDuration(text);
    if (ms === undefined) {
      const unitless = /^\d+(\.\d+)?$/.test(text) ? ` (a number needs a unit: ${text}s?)` : "";
      throw new UsageError(
        `${
          this.label(name)
        } '${text}' is not a duration${unitless}: use e.g. 500ms, 30s, 10m, 1h, or 0`,
      );
    }
    const zero = /^0+(\.0+)?[a-z]*$/.test(text);
    if ((ms === 0 && !zero) || (ms > 0 && ms < min) || ms > MAX_DURATION) {
      throw new UsageError(
        `${this.label(name)} ${text} is out of range (0, or ${formatDuration(min)} to ${
          formatDuration(MAX_DURATION)
        })`,
      );
    }
    return ms;
  }

  /** A size in bytes: `512`, `64KiB`, `1MiB`. */
  size(name: string, fallback: number): number {
    const text = this.last(name);
    if (text === undefined) return fallback;
    const bytes = parseSize(text);
    if (bytes === undefined || bytes < 1) {
      throw new UsageError(
        `${this.label(name)} '${text}' is not a size: use e.g. 512, 64KiB, 1MiB`,
      );
    }
    return bytes;
  }

  /** One of `choices`, with a "did you mean" for a near miss. */
  choice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const text = this.last(name);
    if (text === undefined) return fallback;
    if ((choices as readonly string[]).includes(text)) return text as T;
    throw new UsageError(
      `${this.label(name)} '${text}' is not one of ${choices.join(", ")}${hint(text, choices, "")}`,
    );
  }

  /** A path, which must not be empty. */
  path(name: string): string | undefined {
    const text = this.last(name);
    if (text === "") throw new UsageError(`${this.label(name)} needs a path`);
    return text;
  }

  /** A duration that must be more than 0. */
  positiveTime(name: string, fallback: number): number {
    const ms = this.time(name, fallback);
    if (ms === 0) {
      throw new UsageError(
        `${this.label(name)} must be more than 0 (1ms to ${formatDuration(MAX_DURATION)})`,
      );
    }
    return ms;
  }
}

function parseArgsSpec(o: OptionSpec): { type: "string" | "boolean"; short?: string } {
  // parseArgs rejects keys that are present but undefined.
  return o.short === undefined ? { type: o.kind } : { type: o.kind, short: o.short };
}

/** How an option is shown in help: `-p, --port PORT`. */
export function optionLabel(o: OptionSpec): string {
  const short = o.short ? `-${o.short}, ` : "    ";
  const value = o.optionalValue ? `[=${o.optionalValue}]` : o.value ? ` ${o.value}` : "";
  return `${short}--${o.name}${value}`;
}

/** `: did you mean --port?` when a candidate is close to `word`, else "". */
export function hint(word: string, candidates: readonly string[], prefix: string): string {
  // "warn" → "warning": a clear prefix is as good as a near miss.
  const extended = candidates.find((c) => word.length >= 3 && c.startsWith(word));
  if (extended !== undefined) return `: did you mean ${prefix}${extended}?`;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const close = bestDistance <= Math.max(2, Math.floor(word.length / 3));
  return best !== undefined && close ? `: did you mean ${prefix}${best}?` : "";
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        row[j] + 1,
        next[j - 1] + 1,
        row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length];
}
