/**
 * `--fault [PORT:]SPEC`: the text of a fault profile turned into a typed
 * {@linkcode FaultProfile}, or a {@linkcode FaultSpecError} naming the key
 * and the form it takes. Pure: no I/O, no knowledge of which ports are
 * served (the command line checks that).
 *
 * @module
 */

import { MAX_DURATION, parseDuration, parseSize } from "../units.ts";

/** Every key a SPEC may hold, in the order the help lists them. */
export const FAULT_KEYS = [
  "latency",
  "jitter",
  "rate",
  "slice",
  "stall-after",
  "reset-after",
  "close-after",
  "refuse",
  "blackhole",
  "p",
  "drop",
  "duplicate",
  "delay",
] as const;

/** A key of a fault SPEC; also the `fault` label of `echod_faults_applied_total`. */
export type FaultKey = typeof FAULT_KEYS[number];

/** The keys that act on UDP datagrams; the rest act on TCP connections. */
const UDP_FAULT_KEYS: ReadonlySet<FaultKey> = new Set(["drop", "duplicate", "delay"]);

/** What a profile does to a connection or datagram; absent keys do nothing. */
export interface FaultProfile {
  /** The SPEC as given, naming the profile in logs, the greeting and the help. */
  name: string;
  /** Milliseconds each echoed chunk waits after it arrived. */
  latency: number;
  /** Up to this many milliseconds more per chunk, uniformly at random; order is kept. */
  jitter: number;
  /** Most bytes per second echoed per connection; 0 for no limit. */
  rate: number;
  /** Most bytes per write (one segment each, with TCP_NODELAY); 0 for no limit. */
  slice: number;
  /** After this many bytes received, read and echo nothing more. */
  stallAfter?: number;
  /** After this many bytes echoed, reset the connection. */
  resetAfter?: number;
  /** After this many bytes echoed, close cleanly (FIN). */
  closeAfter?: number;
  /** Reset every new connection at once. */
  refuse: boolean;
  /** Read and discard, never echo, never close. */
  blackhole: boolean;
  /** The fraction of new connections the TCP keys apply to. */
  p: number;
  /** UDP: the fraction of datagrams not answered. */
  drop: number;
  /** UDP: the fraction of answers sent twice. */
  duplicate: number;
  /** UDP: milliseconds each answer waits. */
  delay: number;
}

/** One `--fault`: its port (none: every port) and its profile. */
export interface FaultRule {
  /** The port it applies to; `undefined` for every port. */
  port?: number;
  /** What it does. */
  profile: FaultProfile;
}

/**
 * A SPEC that cannot be a profile; the message names the key and the form
 * it takes. `unknownKey` is set for a key that is none, so that the
 * command line can add its "did you mean".
 */
export class FaultSpecError extends Error {
  /** Creates the error. */
  constructor(message: string, readonly unknownKey?: string) {
    super(message);
    this.name = "FaultSpecError";
  }
}

const FORMS: Readonly<Record<FaultKey, string>> = {
  latency: "a duration such as 50ms",
  jitter: "a duration such as 20ms",
  rate: "a size per second such as 64KiB",
  slice: "a size such as 1 or 512",
  "stall-after": "a size such as 64KiB",
  "reset-after": "a size such as 1MiB",
  "close-after": "a size such as 1000",
  refuse: "no value",
  blackhole: "no value",
  p: "a fraction above 0 and at most 1, such as 0.5",
  drop: "a fraction from 0 to 1, such as 0.5",
  duplicate: "a fraction from 0 to 1, such as 0.1",
  delay: "a duration such as 100ms",
};

/** Keys that end the echo: at most one per profile. */
const CUTS = ["stall-after", "reset-after", "close-after"] as const;

/** Keys that shape an echo, which `refuse` and `blackhole` never send. */
const SHAPERS = ["latency", "jitter", "rate", "slice", ...CUTS] as const;

/**
 * Parses `[PORT:]SPEC`. The port is checked only for its form; whether it
 * is served is the caller's to check. Throws {@linkcode FaultSpecError}.
 */
export function parseFaultRule(text: string): FaultRule {
  const match = /^(\d+):(.*)$/.exec(text);
  if (match === null) return { profile: parseFaultSpec(text) };
  const port = Number(match[1]);
  if (port < 1 || port > 65535) {
    throw new FaultSpecError(`port ${match[1]} is out of range (1-65535)`);
  }
  return { port, profile: parseFaultSpec(match[2]) };
}

/** Parses a SPEC (`latency=100ms,rate=64KiB`). Throws {@linkcode FaultSpecError}. */
export function parseFaultSpec(spec: string): FaultProfile {
  const profile: FaultProfile = {
    name: spec,
    latency: 0,
    jitter: 0,
    rate: 0,
    slice: 0,
    refuse: false,
    blackhole: false,
    p: 1,
    drop: 0,
    duplicate: 0,
    delay: 0,
  };
  if (spec.trim() === "") {
    throw new FaultSpecError(`the profile is empty: give keys such as latency=100ms or refuse`);
  }
  const seen = new Set<FaultKey>();
  const items: string[] = [];
  for (const item of spec.split(",")) {
    const eq = item.indexOf("=");
    const name = (eq < 0 ? item : item.slice(0, eq)).trim();
    const value = eq < 0 ? undefined : item.slice(eq + 1).trim();
    items.push(value === undefined ? name : `${name}=${value}`);
    if (!(FAULT_KEYS as readonly string[]).includes(name)) {
      if (name === "") throw new FaultSpecError("an empty key: separate keys with one comma");
      throw new FaultSpecError(`unknown key ${name}; keys: ${FAULT_KEYS.join(", ")}`, name);
    }
    const key = name as FaultKey;
    if (seen.has(key)) throw new FaultSpecError(`${key} is given twice`);
    seen.add(key);
    setKey(profile, key, value);
  }
  checkPairs(seen);
  profile.name = items.join(",");
  return profile;
}

/** Whether `profile` does anything to TCP connections. */
export function actsOnTcp(profile: FaultProfile): boolean {
  return profile.refuse || profile.blackhole || profile.latency > 0 || profile.jitter > 0 ||
    profile.rate > 0 || profile.slice > 0 || profile.stallAfter !== undefined ||
    profile.resetAfter !== undefined || profile.closeAfter !== undefined;
}

/** Whether `profile` does anything to UDP datagrams. */
export function actsOnUdp(profile: FaultProfile): boolean {
  return profile.drop > 0 || profile.duplicate > 0 || profile.delay > 0;
}

/** The TCP keys a profile holds (the `fault` labels a selected connection counts). */
export function tcpKeys(profile: FaultProfile): FaultKey[] {
  const keys: FaultKey[] = [];
  if (profile.latency > 0) keys.push("latency");
  if (profile.jitter > 0) keys.push("jitter");
  if (profile.rate > 0) keys.push("rate");
  if (profile.slice > 0) keys.push("slice");
  if (profile.blackhole) keys.push("blackhole");
  return keys;
}

/**
 * The profile that applies to `port` among `rules`: the one naming the
 * port, else the one naming none.
 */
export function profileFor(rules: readonly FaultRule[], port: number): FaultProfile | undefined {
  return (rules.find((rule) => rule.port === port) ??
    rules.find((rule) => rule.port === undefined))?.profile;
}

function setKey(profile: FaultProfile, key: FaultKey, value: string | undefined): void {
  const bad = () => new FaultSpecError(`${key} takes ${FORMS[key]}`);
  if (key === "refuse" || key === "blackhole") {
    if (value !== undefined) throw bad();
    profile[key] = true;
    return;
  }
  if (value === undefined || value === "") throw bad();
  switch (key) {
    case "latency":
    case "jitter":
    case "delay": {
      const ms = parseDuration(value);
      if (ms === undefined || ms > MAX_DURATION) throw bad();
      profile[key] = ms;
      return;
    }
    case "rate":
    case "slice": {
      const bytes = parseSize(value);
      if (bytes === undefined || bytes < 1 || !Number.isInteger(bytes)) throw bad();
      profile[key] = bytes;
      return;
    }
    case "stall-after":
    case "reset-after":
    case "close-after": {
      const bytes = parseSize(value);
      if (bytes === undefined || !Number.isInteger(bytes)) throw bad();
      const field = key === "stall-after"
        ? "stallAfter"
        : key === "reset-after"
        ? "resetAfter"
        : "closeAfter";
      profile[field] = bytes;
      return;
    }
    case "p":
    case "drop":
    case "duplicate": {
      const x = /^(0|1|0?\.\d+|1\.0*)$/.test(value) ? Number(value) : NaN;
      if (!(x >= 0 && x <= 1) || (key === "p" && x === 0)) throw bad();
      profile[key] = x;
      return;
    }
  }
}

/** Pairs that cannot both hold: one line naming both and why. */
function checkPairs(seen: ReadonlySet<FaultKey>): void {
  if (seen.has("refuse") && seen.has("blackhole")) {
    throw new FaultSpecError(
      "refuse and blackhole contradict: refuse resets, blackhole keeps open",
    );
  }
  for (const whole of ["refuse", "blackhole"] as const) {
    const other = SHAPERS.find((key) => seen.has(key));
    if (seen.has(whole) && other !== undefined) {
      throw new FaultSpecError(
        `${whole} and ${other} contradict: ${whole} never echoes, so there is nothing to shape`,
      );
    }
  }
  const cuts = CUTS.filter((key) => seen.has(key));
  if (cuts.length > 1) {
    throw new FaultSpecError(
      `${cuts[0]} and ${
        cuts[1]
      } contradict: each ends the echo, so only the first to come would act`,
    );
  }
  if (seen.has("p") && ![...seen].some((key) => key !== "p" && !UDP_FAULT_KEYS.has(key))) {
    throw new FaultSpecError("p chooses connections for the TCP keys: give one with it");
  }
}
