/**
 * readProxyHeader() against headers fed in pieces, in-process: what the
 * specification allows is read, everything else is refused.
 */

import assert from "node:assert/strict";
import { ProxyHeaderError, readProxyHeader } from "../lib/serve/proxy_protocol.ts";

/** A connection that yields `chunks` one read at a time, then end of stream. */
function fakeConn(chunks: Uint8Array[]): Deno.Conn {
  const queue = [...chunks];
  return {
    read(buf: Uint8Array): Promise<number | null> {
      const chunk = queue.shift();
      if (chunk === undefined) return Promise.resolve(null);
      const n = Math.min(buf.length, chunk.length);
      buf.set(chunk.subarray(0, n));
      if (n < chunk.length) queue.unshift(chunk.subarray(n));
      return Promise.resolve(n);
    },
  } as unknown as Deno.Conn;
}

const text = (s: string) => new TextEncoder().encode(s);

function bytewise(data: Uint8Array): Uint8Array[] {
  return [...data].map((b) => new Uint8Array([b]));
}

function v2(command: number, familyTransport: number, body: number[]): Uint8Array {
  return new Uint8Array([
    0x0d,
    0x0a,
    0x0d,
    0x0a,
    0x00,
    0x0d,
    0x0a,
    0x51,
    0x55,
    0x49,
    0x54,
    0x0a,
    0x20 | command,
    familyTransport,
    body.length >> 8,
    body.length & 0xff,
    ...body,
  ]);
}

const V4_BODY = [127, 0, 0, 2, 127, 0, 0, 1, 0x30, 0x39, 0x00, 0x07];
// AF_UNIX: two 108-byte paths (source, destination), no ports.
const UNIX_BODY = [...text("/run/haproxy/a.sock".padEnd(108, "\0")), ...new Array(108).fill(0)];
const MAPPED_BODY = [
  ...[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1],
  ...[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
  0x30,
  0x39,
  0x00,
  0x07,
];

Deno.test("readProxyHeader() reads valid v1 and v2 headers, whole or a byte at a time", async () => {
  const cases: [string, Uint8Array, string | undefined, string][] = [
    ["v1 TCP4", text("PROXY TCP4 192.0.2.1 192.0.2.2 12345 7\r\nhi"), "192.0.2.1", "hi"],
    ["v1 TCP6", text("PROXY TCP6 2001:DB8:0::1 ::1 1 65535\r\n"), "2001:db8::1", ""],
    ["v1 UNKNOWN", text("PROXY UNKNOWN whatever follows\r\nx"), undefined, "x"],
    ["v2 TCP over IPv4", v2(1, 0x11, V4_BODY), "127.0.0.2", ""],
    ["v2 IPv4-mapped source", v2(1, 0x21, MAPPED_BODY), "127.0.0.1", ""],
    ["v2 LOCAL", v2(0, 0x00, []), undefined, ""],
    [
      "v2 with a TLV after the addresses",
      v2(1, 0x11, [...V4_BODY, 0x04, 0, 1, 9]),
      "127.0.0.2",
      "",
    ],
    // A family the receiver does not serve falls back to UNSPEC (the
    // connection's own address); the whole block, TLVs included, is skipped.
    ["v2 UNIX stream", v2(1, 0x31, UNIX_BODY), undefined, ""],
    ["v2 UNIX datagram", v2(1, 0x32, UNIX_BODY), undefined, ""],
    [
      "v2 UNIX stream with a TLV, then data",
      new Uint8Array([...v2(1, 0x31, [...UNIX_BODY, 0x04, 0, 3, 1, 2, 3]), ...text("after")]),
      undefined,
      "after",
    ],
  ];
  for (const [name, data, source, rest] of cases) {
    for (const chunks of [[data], bytewise(data)]) {
      const header = await readProxyHeader(fakeConn(chunks), 1_000);
      assert.equal(header.source?.hostname, source, name);
      assert.equal(new TextDecoder().decode(header.rest), chunks.length > 1 ? "" : rest, name);
    }
  }
});

Deno.test("readProxyHeader() refuses malformed and over-long headers", async () => {
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "v1 line of 500 bytes in one read",
      text(`PROXY TCP4 ${"1".repeat(480)}\r\n`),
      /longer than 107/,
    ],
    ["v1 source 999.999.999.999", text("PROXY TCP4 999.999.999.999 1.2.3.4 1 2\r\n"), /address/],
    ["v1 source with leading zeros", text("PROXY TCP4 010.001.002.003 1.2.3.4 1 2\r\n"), /address/],
    ["v1 source :zz:", text("PROXY TCP6 :zz: ::1 1 2\r\n"), /address/],
    ["v1 TCP4 with an IPv6 source", text("PROXY TCP4 ::1 1.2.3.4 1 2\r\n"), /address/],
    ["v1 bad destination", text("PROXY TCP4 1.2.3.4 1.2.3 1 2\r\n"), /address/],
    ["v1 port 65536", text("PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n"), /port/],
    ["v1 port with a leading zero", text("PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n"), /port/],
    ["v1 two spaces", text("PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n"), /bad PROXY v1 line/],
    ["v1 UDP4", text("PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n"), /bad PROXY v1 line/],
    ["no header", text("GET / HTTP/1.1\r\n\r\n"), /did not start with a PROXY header/],
    ["v2 DGRAM", v2(1, 0x12, V4_BODY), /datagram/],
    ["v2 short IPv4 block", v2(1, 0x11, V4_BODY.slice(0, 11)), /too short/],
    ["v2 short IPv6 block", v2(1, 0x21, V4_BODY), /too short/],
    ["v2 short UNIX block", v2(1, 0x31, UNIX_BODY.slice(0, 215)), /too short/],
    ["v2 short UNIX datagram block", v2(1, 0x32, V4_BODY), /too short/],
    ["v2 UNIX with transport UNSPEC", v2(1, 0x30, UNIX_BODY), /transport 0/],
    ["v2 family 4", v2(1, 0x41, UNIX_BODY), /family 4/],
    ["v2 command 2", v2(2, 0x11, V4_BODY), /command 2/],
    ["closed inside the header", text("PROXY TCP4 1.2"), /closed inside/],
  ];
  for (const [name, data, message] of cases) {
    await assert.rejects(
      readProxyHeader(fakeConn([data]), 1_000),
      (error: Error) => error instanceof ProxyHeaderError && message.test(error.message),
      name,
    );
  }
});
