/**
 * The PROXY protocol (versions 1 and 2, as HAProxy defines it): the header
 * a load balancer sends first on each connection to say who the real
 * client is. echod reads it only from `--trusted-proxy` addresses.
 *
 * @module
 */

/** What a PROXY header said. */
export interface ProxyHeader {
  /**
   * The real client; `undefined` for a `LOCAL` (v2) or `UNKNOWN` (v1)
   * header, e.g. the proxy's own health check.
   */
  source?: { hostname: string; port: number };
  /** Bytes read past the header: the client's first data, to be echoed. */
  rest: Uint8Array;
}

/** A connection from a trusted proxy that did not start with a valid header. */
export class ProxyHeaderError extends Error {
  /** Creates the error with what was wrong. */
  constructor(message: string) {
    super(message);
    this.name = "ProxyHeaderError";
  }
}

const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const V1_MAX = 107; // the longest v1 line, CRLF included
const V2_MAX_BODY = 2048; // addresses plus TLVs we are willing to skip

/**
 * Reads a v1 or v2 PROXY header from `conn`. Rejects with
 * {@linkcode ProxyHeaderError} when the header is missing, malformed or not
 * complete within `timeoutMs` (the connection is then closed by the caller).
 */
export async function readProxyHeader(conn: Deno.Conn, timeoutMs: number): Promise<ProxyHeader> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ProxyHeaderError(`no PROXY header within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([readHeader(conn), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function readHeader(conn: Deno.Conn): Promise<ProxyHeader> {
  const buf = new Uint8Array(16 + V2_MAX_BODY);
  let have = 0;
  async function fill(atLeast: number): Promise<void> {
    while (have < atLeast) {
      const n = await conn.read(buf.subarray(have));
      if (n === null) throw new ProxyHeaderError("the connection closed inside the PROXY header");
      have += n;
    }
  }
  await fill(8);
  if (startsWith(buf, V2_SIGNATURE.slice(0, 8))) {
    await fill(16);
    if (!startsWith(buf, V2_SIGNATURE)) throw new ProxyHeaderError("bad PROXY v2 signature");
    const length = (buf[14] << 8) | buf[15];
    if (length > V2_MAX_BODY) throw new ProxyHeaderError(`PROXY v2 header of ${length} bytes`);
    await fill(16 + length);
    return { source: parseV2(buf.subarray(0, 16 + length)), rest: buf.slice(16 + length, have) };
  }
  if (!startsWith(buf, [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20])) { // "PROXY "
    throw new ProxyHeaderError("the connection did not start with a PROXY header");
  }
  let end = -1;
  while (end === -1) {
    end = indexOfCrlf(buf, have);
    if (end !== -1) break;
    if (have >= V1_MAX) throw new ProxyHeaderError("PROXY v1 line too long");
    await fill(have + 1);
  }
  const line = new TextDecoder().decode(buf.subarray(0, end));
  return { source: parseV1(line), rest: buf.slice(end + 2, have) };
}

function parseV1(line: string): ProxyHeader["source"] {
  const parts = line.split(" ");
  if (parts[1] === "UNKNOWN") return undefined;
  if (parts.length !== 6 || (parts[1] !== "TCP4" && parts[1] !== "TCP6")) {
    throw new ProxyHeaderError(`bad PROXY v1 line: ${line.slice(0, 60)}`);
  }
  const port = Number(parts[4]);
  if (!/^\d{1,5}$/.test(parts[4]) || port > 65535) {
    throw new ProxyHeaderError(`bad source port in PROXY v1 line: ${parts[4]}`);
  }
  const hostname = parts[2];
  const v4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname);
  if (parts[1] === "TCP4" ? !v4 : !hostname.includes(":")) {
    throw new ProxyHeaderError(`bad source address in PROXY v1 line: ${hostname}`);
  }
  return { hostname, port };
}

function parseV2(header: Uint8Array): ProxyHeader["source"] {
  const version = header[12] >> 4;
  const command = header[12] & 0x0f;
  if (version !== 2) throw new ProxyHeaderError(`PROXY header version ${version}`);
  if (command === 0) return undefined; // LOCAL: the proxy speaking for itself
  if (command !== 1) throw new ProxyHeaderError(`PROXY v2 command ${command}`);
  const family = header[13] >> 4;
  const body = header.subarray(16);
  if (family === 1 && body.length >= 12) {
    return { hostname: body.subarray(0, 4).join("."), port: (body[8] << 8) | body[9] };
  }
  if (family === 2 && body.length >= 36) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((body[i] << 8) | body[i + 1]).toString(16));
    return { hostname: compressIpv6(groups), port: (body[32] << 8) | body[33] };
  }
  if (family === 0) return undefined; // UNSPEC
  throw new ProxyHeaderError(`PROXY v2 address family ${family} is not TCP over IP`);
}

/** Shortens the longest run of zero groups to `::`, as Deno prints addresses. */
function compressIpv6(groups: string[]): string {
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === "0") j++;
    if (j - i > bestLength) {
      best = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (best === -1) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLength).join(":")}`;
}

function startsWith(buf: Uint8Array, prefix: number[]): boolean {
  return prefix.every((b, i) => buf[i] === b);
}

function indexOfCrlf(buf: Uint8Array, length: number): number {
  for (let i = 0; i + 1 < length; i++) {
    if (buf[i] === 0x0d && buf[i + 1] === 0x0a) return i;
  }
  return -1;
}
