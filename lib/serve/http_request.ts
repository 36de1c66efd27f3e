/**
 * Reading and checking an HTTP/1.1 request head as RFC 9112 asks of a
 * server, for the metrics endpoint: the request line, the `Host` field, the
 * absolute form, and bare LF as a line end. Bodies are never read: the
 * endpoint answers GET and HEAD only, one request per connection.
 *
 * @module
 */

/** A request that passed the checks. */
export interface Request {
  /** The method, case-sensitive (`GET`, `HEAD`, …). */
  method: string;
  /** The target in origin form (`/path?query`), an absolute form reduced to it. */
  target: string;
}

const LF = 10;
const CR = 13;

/**
 * Reads a request head from `conn` up to its empty line, which may end in
 * CRLF or a bare LF (RFC 9112 section 2.2); empty lines before the request
 * line are skipped (same section). Returns the head without its empty line,
 * or `431` when it does not fit in `max` bytes; rejects when the client
 * goes away first.
 */
export async function readRequestHead(conn: Deno.Conn, max: number): Promise<string | number> {
  const buf = new Uint8Array(max);
  let have = 0;
  let start = 0; // where the head starts, past any empty lines before it
  let lineStart = 0;
  for (;;) {
    if (have === buf.length) return 431;
    const n = await conn.read(buf.subarray(have));
    if (n === null) throw new Deno.errors.UnexpectedEof("closed before the request ended");
    for (let i = have; i < have + n; i++) {
      if (buf[i] !== LF) continue;
      const empty = i === lineStart || (i === lineStart + 1 && buf[lineStart] === CR);
      if (empty && lineStart > start) {
        return new TextDecoder().decode(buf.subarray(start, lineStart));
      }
      if (empty) start = i + 1;
      lineStart = i + 1;
    }
    have += n;
  }
}

// RFC 9110 section 5.6.2.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// A URI's path and query characters (RFC 3986: pchar, "/" and "?").
const PATH = "[-A-Za-z0-9._~!$&'()*+,;=:@%/?]";
// absolute-path [ "?" query ].
const ORIGIN_FORM = new RegExp(`^/${PATH}*$`);
// http(s)://authority[path-abempty][?query]; the authority is checked as a
// host below, so userinfo (an @) is refused (RFC 9110 section 4.2.4).
const ABSOLUTE_FORM = new RegExp(`^https?://([^/?#]+)([/?]${PATH}*)?$`, "i");
// uri-host [ ":" port ], the host an IP literal or a reg-name.
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~!$&'()*+,;=%]+)(:\d*)?$/;

/**
 * Checks a head read by {@linkcode readRequestHead}. Returns the request, or
 * `undefined` when a server must answer `400` (RFC 9112): a request line
 * that is not exactly `method SP request-target SP HTTP/1.x`, a target in
 * neither origin nor absolute form, an HTTP/1.1 request without exactly one
 * valid `Host` (section 3.2), a bare CR or NUL (section 2.2), a folded line,
 * or a field line without a name and colon (section 5).
 */
export function parseRequest(head: string): Request | undefined {
  if (head.includes("\0")) return undefined;
  const lines = head.split("\n").slice(0, -1).map((line) =>
    line.endsWith("\r") ? line.slice(0, -1) : line
  );
  if (lines.some((line) => line.includes("\r"))) return undefined;
  const parts = lines[0].split(" ");
  if (parts.length !== 3) return undefined;
  const [method, form, version] = parts;
  if (!TOKEN.test(method) || !/^HTTP\/1\.[01]$/.test(version)) return undefined;
  let target: string | undefined;
  if (ORIGIN_FORM.test(form)) {
    target = form;
  } else {
    // The absolute form: its authority must be a host, and its path is the target.
    const absolute = ABSOLUTE_FORM.exec(form);
    if (absolute === null || !HOST.test(absolute[1])) return undefined;
    const rest = absolute[2] ?? "";
    target = rest.startsWith("/") ? rest : `/${rest}`;
  }
  const hosts: string[] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    // A name is a token right before the colon: no space there, no fold.
    if (colon < 1 || !TOKEN.test(line.slice(0, colon))) return undefined;
    if (line.slice(0, colon).toLowerCase() === "host") {
      hosts.push(line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, ""));
    }
  }
  const needed = version === "HTTP/1.1" ? 1 : 0;
  if (hosts.length > 1 || hosts.length < needed) return undefined;
  if (hosts.some((host) => host !== "" && !HOST.test(host))) return undefined;
  return { method, target };
}
