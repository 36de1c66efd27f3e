/**
 * Access control by address: `--allow CIDR` and `--deny CIDR`, for IPv4 and
 * IPv6, as xinetd's `only_from`/`no_access` and ncat's `--allow`/`--deny`.
 * Deny wins; with any allow rule, only matching addresses get in.
 * IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`), in rules and in peers,
 * are treated as the IPv4 address they carry.
 *
 * @module
 */

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

  /** Whether `ip` (an address as Deno reports it) may connect. */
  permits(ip: string): boolean {
    const bytes = parseIp(ip);
    if (bytes === undefined) return this.#allow.length === 0;
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

/**
 * Parses an IPv4 or IPv6 address into 4 or 16 bytes; an IPv4-mapped IPv6
 * address becomes its 4 IPv4 bytes unless `unmap` is false.
 */
export function parseIp(text: string, unmap = true): Uint8Array | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return v4;
  const v6 = parseIpv6(text);
  if (v6 === undefined) return undefined;
  return unmap && isMapped(v6) ? v6.slice(12) : v6;
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^(0|[1-9]\d{0,2})$/.test(parts[i]) || Number(parts[i]) > 255) return undefined;
    out[i] = Number(parts[i]);
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const zoneless = text.replace(/%.*$/, "");
  const halves = zoneless.split("::");
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIpv4(piece);
        if (v4 === undefined) return undefined;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-f]{1,4}$/i.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function isMapped(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
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
