/**
 * IP addresses as text: strict parsing (no leading zeros in IPv4, at most
 * one `::` in IPv6) and one canonical form, so that every place that counts
 * or matches a peer sees the same key for the same address.
 *
 * The canonical form is dotted decimal for IPv4 and RFC 5952 for IPv6
 * (lower case, the longest run of two or more zero groups as `::`); an
 * IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, `::ffff:c000:201`) is the
 * IPv4 address it carries.
 *
 * @module
 */

/**
 * Parses an IPv4 or IPv6 address into 4 or 16 bytes; an IPv4-mapped IPv6
 * address becomes its 4 IPv4 bytes unless `unmap` is false. Returns
 * `undefined` when the text is not an address.
 */
export function parseIp(text: string, unmap = true): Uint8Array | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return v4;
  const v6 = parseIpv6(text);
  if (v6 === undefined) return undefined;
  return unmap && isMapped(v6) ? v6.slice(12) : v6;
}

/** Formats 4 or 16 address bytes canonically (dotted decimal, or RFC 5952). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  // The longest run of at least two zero groups (the first of equals) becomes "::".
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      best = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (g: number[]) => g.map((n) => n.toString(16)).join(":");
  if (best === -1) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLength))}`;
}

/**
 * The canonical text of an address (see the module doc), or `undefined`
 * when `text` is not an address.
 */
export function canonicalIp(text: string): string | undefined {
  // The common cases need no parse: an IPv4 peer, and one seen through a
  // dual-stack socket (`::ffff:a.b.c.d`), as Deno reports them.
  if (SIMPLE_IPV4.test(text)) return text;
  if (text.length > 7 && MAPPED_PREFIX.test(text) && SIMPLE_IPV4.test(text.slice(7))) {
    return text.slice(7);
  }
  const bytes = parseIp(text);
  return bytes === undefined ? undefined : formatIp(bytes);
}

/** Whether the 16 bytes are an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`). */
export function isMapped(bytes: Uint8Array): boolean {
  if (bytes.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

// Four decimal octets without leading zeros, each at most 255.
const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const SIMPLE_IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
const MAPPED_PREFIX = /^::ffff:/i;

function parseIpv4(text: string): Uint8Array | undefined {
  if (!SIMPLE_IPV4.test(text)) return undefined;
  return new Uint8Array(text.split(".").map(Number));
}

function parseIpv6(text: string): Uint8Array | undefined {
  const zoneless = text.replace(/%[^%]+$/, "");
  const halves = zoneless.split("::");
  if (halves.length > 2) return undefined;
  const head = groupsOf(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? groupsOf(halves[1], true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** The 16-bit groups of one side of `::`; an embedded IPv4 address is allowed last. */
function groupsOf(part: string, last: boolean): number[] | undefined {
  if (part === "") return [];
  const out: number[] = [];
  const pieces = part.split(":");
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i];
    if (last && i === pieces.length - 1 && piece.includes(".")) {
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
}
