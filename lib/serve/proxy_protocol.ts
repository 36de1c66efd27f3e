/**
 * The PROXY protocol (versions 1 and 2, as HAProxy defines it): the header
 * a load balancer sends first on each connection to say who the real
 * client is. echod reads it only from `--trusted-proxy` addresses.
 *
 * @module
 */

import { formatIp, isMapped, parseIp } from "../ip.ts";

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
// The address block's length by v2 family: IPv4 and IPv6 (two addresses,
// two ports), AF_UNIX (two 108-byte paths).
const ADDRESS_BLOCK: Record<number, number> = { 1: 12, 2: 36, 3: 216 };

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
  let end = indexOfCrlf(buf, Math.min(have, V1_MAX));
  while (end === -1) {
    if (have >= V1_MAX) throw new ProxyHeaderError(`PROXY v1 line longer than ${V1_MAX} bytes`);
    await fill(have + 1);
    end = indexOfCrlf(buf, Math.min(have, V1_MAX));
  }
  const line = new TextDecoder().decode(buf.subarray(0, end));
  return { source: parseV1(line), rest: buf.slice(end + 2, have) };
}

// A port in a v1 line: decimal, 0-65535, no leading zero.
const V1_PORT = /^(0|[1-9]\d{0,4})$/;

function parseV1(line: string): ProxyHeader["source"] {
  const parts = line.split(" ");
  // "PROXY UNKNOWN" may be followed by anything, which the receiver ignores.
  if (parts[1] === "UNKNOWN") return undefined;
  if (parts.length !== 6 || (parts[1] !== "TCP4" && parts[1] !== "TCP6")) {
    throw new ProxyHeaderError(`bad PROXY v1 line: ${printable(line)}`);
  }
  const [, family, source, destination, sourcePort, destinationPort] = parts;
  const length = family === "TCP4" ? 4 : 16;
  for (const address of [source, destination]) {
    const bytes = parseIp(address, false);
    if (bytes === undefined || bytes.length !== length) {
      throw new ProxyHeaderError(`bad ${family} address in PROXY v1 line: ${printable(address)}`);
    }
  }
  for (const port of [sourcePort, destinationPort]) {
    if (!V1_PORT.test(port) || Number(port) > 65535) {
      throw new ProxyHeaderError(`bad port in PROXY v1 line: ${printable(port)}`);
    }
  }
  return { hostname: formatIp(parseIp(source)!), port: Number(sourcePort) };
}

function parseV2(header: Uint8Array): ProxyHeader["source"] {
  const version = header[12] >> 4;
  const command = header[12] & 0x0f;
  if (version !== 2) throw new ProxyHeaderError(`PROXY header version ${version}`);
  // LOCAL: the proxy speaking for itself (a health check); the block is ignored.
  if (command === 0) return undefined;
  if (command !== 1) throw new ProxyHeaderError(`PROXY v2 command ${command}`);
  const family = header[13] >> 4;
  const transport = header[13] & 0x0f;
  // UNSPEC: the proxy does not know the client; the connection's own address stands.
  if (header[13] === 0) return undefined;
  const blockLength = ADDRESS_BLOCK[family];
  if (blockLength === undefined) {
    throw new ProxyHeaderError(`PROXY v2 address family ${family} is not defined`);
  }
  // AF_UNIX (a Unix-socket frontend, stream or datagram) names no IP
  // client: as the specification asks of a family a receiver does not
  // serve, it falls back to UNSPEC, its block and TLVs skipped whole.
  const unix = family === 3 && (transport === 1 || transport === 2);
  if (transport !== 1 && !unix) {
    const what = transport === 2 ? "a datagram (UDP) flow" : `transport ${transport}`;
    throw new ProxyHeaderError(`PROXY v2 header for ${what}, not a TCP connection`);
  }
  const body = header.subarray(16);
  if (body.length < blockLength) {
    throw new ProxyHeaderError(`PROXY v2 address block of ${body.length} bytes is too short`);
  }
  if (unix) return undefined;
  const length = family === 1 ? 4 : 16;
  const port = (body[2 * length] << 8) | body[2 * length + 1];
  return { hostname: formatIp(unmapped(body.slice(0, length))), port };
}

/** An IPv4-mapped IPv6 address as the IPv4 address it carries. */
function unmapped(bytes: Uint8Array): Uint8Array {
  return isMapped(bytes) ? bytes.subarray(12) : bytes;
}

/** Text from a header, shortened and with control bytes shown, for an error message. */
function printable(text: string): string {
  // deno-lint-ignore no-control-regex
  const shown = text.replace(/[\x00-\x1f\x7f-\uffff]/g, "?");
  return shown.length > 60 ? `${shown.slice(0, 60)}…` : shown;
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
