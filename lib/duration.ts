/**
 * Durations as people write them on a command line: `500ms`, `30s`, `10m`,
 * `1h`, or `0` for "never".
 *
 * @module
 */

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a duration such as `500ms`, `30s`, `10m`, `1.5h` or `0` into
 * milliseconds. Returns `undefined` when the text is not a duration, so the
 * caller can name the option in its error message.
 */
export function parseDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (match === null) return undefined;
  const ms = Number(match[1]) * UNITS[match[2]];
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/** Formats milliseconds in the largest unit that divides them exactly: `90000` → `90s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  for (const unit of ["h", "m", "s"]) {
    if (ms % UNITS[unit] === 0) return `${ms / UNITS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
