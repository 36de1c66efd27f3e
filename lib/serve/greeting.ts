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

/** The template `--greeting` uses when given without one. */
export const DEFAULT_GREETING =
  "echod {version} on {host} ({local}, {transport}): you are {client}{via}";

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
}

/**
 * Checks a template: every `{name}` must be a known placeholder. Returns
 * the unknown one, or `undefined` when all are known.
 */
export function unknownPlaceholder(template: string): string | undefined {
  for (const [, name] of template.matchAll(/\{([^{}]*)\}/g)) {
    if (!(name in PLACEHOLDERS)) return name;
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
  #encoder = new TextEncoder();

  /** Prepares `template` (checked with {@linkcode unknownPlaceholder}). */
  constructor(template: string, host: string | undefined) {
    this.#template = template;
    this.#host = host;
  }

  /** The line for one connection, newline included. */
  render(facts: GreetingFacts): Uint8Array {
    const local = hostPort(
      canonicalIp(facts.local.hostname) ?? facts.local.hostname,
      facts.local.port,
    );
    const values: Record<string, string> = {
      host: this.#host ?? local,
      local,
      client: facts.client,
      proxy: facts.proxy ?? "-",
      via: facts.proxy === undefined ? "" : ` via ${facts.proxy}`,
      transport: facts.transport,
      time: new Date().toISOString(),
      version: VERSION,
    };
    const line = this.#template.replace(/\{([^{}]*)\}/g, (_, name: string) => values[name]);
    return this.#encoder.encode(line + "\n");
  }
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
