/**
 * Access control by address: `--allow CIDR` and `--deny CIDR`, for IPv4 and
 * IPv6, as xinetd's `only_from`/`no_access` and ncat's `--allow`/`--deny`.
 * Deny wins; with any allow rule, only matching addresses get in.
 * IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`), in rules and in peers,
 * are treated as the IPv4 address they carry.
 *
 * @module
 */

import { isMapped, parseIp } from "../ip.ts";

/** An address block: its bytes (4 or 16) and how many leading bits count. */
export interface Cidr {
  /** The network address, 4 bytes for IPv4 or 16 for IPv6. */
  bytes: Uint8Array;
  /** Leading bits that must match. */
  prefix: number;
}

/** The rules of an {@linkcode AccessList}. */
export interface AccessListOptions {
  /**
   * Blocks that may connect; empty lets everyone not denied in.
   * @default {[]}
   */
  allow?: Cidr[];
  /**
   * Blocks that may not connect, whatever `allow` says.
   * @default {[]}
   */
  deny?: Cidr[];
}

/** Decides whether an address may connect. */
export class AccessList {
  #allow: Cidr[];
  #deny: Cidr[];

  /** Creates an access list from parsed rules. */
  constructor(options: AccessListOptions) {
    this.#allow = options.allow ?? [];
    this.#deny = options.deny ?? [];
  }

  /**
   * Whether `ip` may connect. An address that does not parse is refused
   * whenever there is any rule: a list fails closed.
   */
  permits(ip: string): boolean {
    const bytes = parseIp(ip);
    if (bytes === undefined) return this.#allow.length === 0 && this.#deny.length === 0;
    if (this.#deny.some((c) => contains(c, bytes))) return false;
    return this.#allow.length === 0 || this.#allow.some((c) => contains(c, bytes));
  }

  /** Whether `ip` is in any `allow` block (for lists used as "trusted" sets). */
  matches(ip: string): boolean {
    const bytes = parseIp(ip);
    return bytes !== undefined && this.#allow.some((c) => contains(c, bytes));
  }
}

/**
 * Parses `192.0.2.0/24`, `2001:db8::/32` or a single address (a /32 or
 * /128). Returns `undefined` when the text is not one.
 */
export function parseCidr(text: string): Cidr | undefined {
  const [address, prefixText, extra] = text.split("/");
  if (extra !== undefined) return undefined;
  let bytes = parseIp(address, false);
  if (bytes === undefined) return undefined;
  let prefix = bytes.length * 8;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText)) return undefined;
    prefix = Number(prefixText);
    if (prefix > bytes.length * 8) return undefined;
  }
  // An IPv4-mapped block is the IPv4 block it maps.
  if (bytes.length === 16 && prefix >= 96 && isMapped(bytes)) {
    bytes = bytes.slice(12);
    prefix -= 96;
  }
  return { bytes, prefix };
}

function contains(cidr: Cidr, bytes: Uint8Array): boolean {
  if (cidr.bytes.length !== bytes.length) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((cidr.bytes[i] & mask) !== (bytes[i] & mask)) return false;
  }
  return true;
}
