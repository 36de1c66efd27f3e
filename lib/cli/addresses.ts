/**
 * Addresses as the command line gives them: ports, `HOST:PORT` targets,
 * `--host` lists, CIDR blocks and the metrics address, each refused in one
 * line when it is not what it should be.
 *
 * @module
 */

import { isIP } from "node:net";
import { UsageError } from "../errors.ts";
import { canonicalIp } from "../ip.ts";
import { type Cidr, parseCidr } from "../serve/acl.ts";
import { DEFAULT_PORT } from "../serve/defaults.ts";
import type { Target } from "../net.ts";

/**
 * Parses `HOST:PORT`, `[IPv6]:PORT`, or a bare host or IPv6 address (port
 * 40007).
 */
export function parseTarget(text: string): Target {
  let host: string;
  let port: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    [, host, port] = bracketed;
  } else if ((text.match(/:/g) ?? []).length > 1) {
    host = text; // a bare IPv6 address
  } else {
    const colon = text.lastIndexOf(":");
    host = colon === -1 ? text : text.slice(0, colon);
    port = colon === -1 ? undefined : text.slice(colon + 1);
  }
  if (host === "" || /[\s/]/.test(host)) {
    throw new UsageError(`'${text}' is not HOST:PORT (e.g. 127.0.0.1:40007 or [::1]:40007)`);
  }
  if (host.includes(":") && isIP(host) !== 6) {
    throw new UsageError(`'${host}' is not an IPv6 address`);
  }
  return { host, port: port === undefined ? DEFAULT_PORT : parsePort(port, "port") };
}

/**
 * The `--host` addresses in canonical form. The same address twice, or a
 * wildcard with an address of its own family (`0.0.0.0` and `127.0.0.1`),
 * cannot both be bound: say so here rather than let the OS call it "port in use".
 */
export function parseHosts(texts: string[], label = "--host"): string[] {
  const hosts: string[] = [];
  for (const text of texts) {
    const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
    const host = isIP(bare) === 0 ? undefined : canonicalIp(bare);
    if (host === undefined) {
      throw new UsageError(
        `${label} ${text} is not an IP address: use e.g. 127.0.0.1, ::1, 0.0.0.0 or ::`,
      );
    }
    const same = hosts.indexOf(host);
    if (same !== -1) {
      const given = texts[same] === host && text === host ? "" : ` (${host})`;
      throw new UsageError(
        `${label} ${texts[same]} and ${label} ${text} are the same address${given}: give it once`,
      );
    }
    hosts.push(host);
  }
  for (const wildcard of ["0.0.0.0", "::"]) {
    if (!hosts.includes(wildcard)) continue;
    const v6 = wildcard === "::";
    const covered = hosts.find((h) => h !== wildcard && h.includes(":") === v6 && !isWildcard(h));
    if (covered !== undefined) {
      throw new UsageError(
        `${label} ${wildcard} already covers ${label} ${covered}: leave out one of them`,
      );
    }
  }
  return hosts;
}

function isWildcard(host: string): boolean {
  return host === "::" || host === "0.0.0.0";
}

/** A port, 0-65535; `what` names it in the error (`port`, `--tls-port`). */
export function parsePort(text: string, what: string): number {
  if (!/^-?\d+$/.test(text)) {
    throw new UsageError(`${what} '${text}' is not a number: use 0-65535`);
  }
  const port = Number(text);
  // "-0" too: a sign is never part of a port.
  if (text.startsWith("-") || port > 65535) {
    throw new UsageError(`${what} ${text} is out of range (0-65535)`);
  }
  return port;
}

/** A CIDR block; `label` names its option in the error (`--allow`, `ECHOD_ALLOW`). */
export function parseBlock(label: string, text: string): Cidr {
  const cidr = parseCidr(text);
  if (cidr === undefined) {
    throw new UsageError(
      `${label} ${text} is not an address or CIDR block (e.g. 192.0.2.0/24, 2001:db8::/32)`,
    );
  }
  return cidr;
}

/** `--metrics PORT` (loopback) or `--metrics ADDR:PORT`; `label` names the option in errors. */
export function parseMetricsTarget(text: string, label = "--metrics"): Target {
  if (/^\d+$/.test(text)) return { host: "127.0.0.1", port: parsePort(text, `${label} port`) };
  const target = parseTarget(text);
  if (isIP(target.host) === 0) {
    throw new UsageError(`${label} ${text}: ${target.host} is not an IP address`);
  }
  if (!/:\d+$/.test(text)) throw new UsageError(`${label} ${text} needs a port (ADDR:PORT)`);
  return target;
}
