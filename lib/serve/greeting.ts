/**
 * `--greeting`: one line sent when a connection is admitted, before any
 * echo, naming the server that answered and the client it sees, for
 * checking load balancers, proxies and network policies. Off by default, so
 * plain echo stays exactly RFC 862; never sent over UDP, where it would be
 * an amplifier (a reply larger than the request).
 *
 * @module
 */

import { canonicalIp } from "../ip.ts";
import { hostPort } from "../net.ts";
import { VERSION } from "../version.ts";

/** The placeholders a template may use, and what each becomes. */
export const PLACEHOLDERS: Readonly<Record<string, string>> = {
  host: "the server's host name (its local address when the name may not be read)",
  local: "the address and port the client reached",
  client:
    "the client's address and port, as echod sees it (after a PROXY header, the client it names)",
  proxy: "the proxy's own address and port, or - without a PROXY header",
  via: "' via PROXY-ADDRESS' after a PROXY header, else nothing",
  transport: "tcp or tls",
  time: "the time, RFC 3339 in UTC",
  version: "echod's version",
  fault: "the fault profile applied to the connection (--fault), or - for none",
};

/** What a greeting is made from, for one connection. */
export interface GreetingFacts {
  /** The listener's side of the connection. */
  local: Deno.NetAddr;
  /** The client: the peer, or the one a PROXY header names. */
  client: string;
  /** The proxy's address, when a PROXY header named the client. */
  proxy?: string;
  /** `tcp` or `tls`. */
  transport: "tcp" | "tls";
  /** The fault profile applied to the connection, if any. */
  fault?: string;
}

// `{env:POD_NAME}`: a variable's value, read once at start (the downward API
// sets a pod's name, namespace and node this way).
const ENV_PLACEHOLDER = /^env:([A-Za-z_][A-Za-z0-9_]*)$/;

// What a line may not hold: control characters (a tab aside) and Unicode
// line breaks; a greeting is one line, whatever a template or value holds.
// deno-lint-ignore no-control-regex
const NOT_ONE_LINE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]/g;
const MAX_VALUE = 253;

/**
 * The first character in `text` that would break a line or a terminal
 * (`\n`, `\r`, another control character), or `undefined`.
 */
export function lineBreaker(text: string): string | undefined {
  NOT_ONE_LINE.lastIndex = 0;
  return NOT_ONE_LINE.exec(text)?.[0];
}

/**
 * Checks a template: every `{name}` must be a known placeholder or
 * `{env:NAME}`. Returns the unknown one, or `undefined` when all are known.
 */
export function unknownPlaceholder(template: string): string | undefined {
  for (const [, name] of template.matchAll(/\{([^{}]*)\}/g)) {
    // Own names only: {constructor} is no placeholder.
    if (!Object.hasOwn(PLACEHOLDERS, name) && !ENV_PLACEHOLDER.test(name)) return name;
  }
  return undefined;
}

/**
 * A template made ready for many connections. `host` is the server's name,
 * or `undefined` when it may not be read (the local address is used then).
 */
export class Greeting {
  #template: string;
  #host?: string;
  #env: Record<string, string> = {};
  #encoder = new TextEncoder();

  /**
   * Prepares `template` (checked with {@linkcode unknownPlaceholder}); the
   * variables it names are read now, as `-` when unset or not allowed.
   */
  constructor(template: string, host: string | undefined) {
    this.#template = template;
    this.#host = host;
    for (const [, name] of template.matchAll(/\{env:([^{}]*)\}/g)) {
      this.#env[`env:${name}`] = oneLine(readVariable(name) ?? "-");
    }
  }

  /** The line for one connection, newline included. */
  render(facts: GreetingFacts): Uint8Array {
    const local = hostPort(
      canonicalIp(facts.local.hostname) ?? facts.local.hostname,
      facts.local.port,
    );
    const values: Record<string, string> = {
      ...this.#env,
      host: this.#host ?? local,
      local,
      client: facts.client,
      proxy: facts.proxy ?? "-",
      via: facts.proxy === undefined ? "" : ` via ${facts.proxy}`,
      transport: facts.transport,
      time: new Date().toISOString(),
      version: VERSION,
      fault: facts.fault ?? "-",
    };
    const line = this.#template.replace(/\{([^{}]*)\}/g, (_, name: string) => values[name]);
    return this.#encoder.encode(line + "\n");
  }
}

function readVariable(name: string): string | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
    return undefined;
  }
  return Deno.env.get(name);
}

/** `value` made safe to send inside one line: control characters become `?`, the length bounded. */
function oneLine(value: string): string {
  const safe = value.replace(NOT_ONE_LINE, "?");
  return safe.length > MAX_VALUE ? `${safe.slice(0, MAX_VALUE)}…` : safe;
}

/**
 * The host name, when Deno may read it: under `deno run` that takes
 * `--allow-sys=hostname`. Returns `undefined` otherwise, without a prompt.
 */
export function readHostName(): string | undefined {
  if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state !== "granted") {
    return undefined;
  }
  try {
    return Deno.hostname();
  } catch {
    return undefined;
  }
}
