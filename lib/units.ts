/**
 * Units as people write them on a command line: durations (`500ms`, `30s`,
 * `10m`, `1h`, `0`) and byte sizes (`512`, `64KiB`, `1MiB`).
 *
 * @module
 */

const TIME_UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1_024,
  kb: 1_000,
  kib: 1_024,
  m: 1_048_576,
  mb: 1_000_000,
  mib: 1_048_576,
  g: 1_073_741_824,
  gb: 1_000_000_000,
  gib: 1_073_741_824,
};

/**
 * The longest duration a timer can be set for, in whole hours: 596h
 * (timers take at most 2^31 - 1 ms, about 596.5 h; a longer one fires at once).
 */
export const MAX_DURATION = 596 * 3_600_000;

/**
 * Parses a duration such as `500ms`, `30s`, `10m`, `1.5h` or `0` into
 * milliseconds. Returns `undefined` when the text is not a duration, so the
 * caller can name the option in its error message.
 */
export function parseDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (match === null) return undefined;
  const ms = Number(match[1]) * TIME_UNITS[match[2]];
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/** Formats milliseconds in the largest unit that divides them exactly: `90000` → `90s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  for (const unit of ["h", "m", "s"]) {
    if (ms % TIME_UNITS[unit] === 0) return `${ms / TIME_UNITS[unit]}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * Parses a byte size: a whole number with an optional unit (`K`/`KiB` =
 * 1024, `KB` = 1000, likewise M and G; case does not matter). Returns
 * `undefined` when the text is not a size.
 */
export function parseSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text);
  if (match === null) return undefined;
  const unit = SIZE_UNITS[match[2].toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Number(match[1]) * unit;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
