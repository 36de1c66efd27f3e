/**
 * The PROXY protocol: v1 and v2 by hand, per-client limits, and behind a
 * real HAProxy.
 */

import assert from "node:assert/strict";
import {
  closedByPeer,
  closeQuietly,
  connect,
  readExactly,
  roundTrip,
  writeAll,
} from "./_client.ts";
import { startEchod } from "./_echod.ts";
import { readLine } from "../lib/net.ts";
import { metric, scrape } from "./_metrics.ts";
import { HAS_HAPROXY, startHaproxy } from "./_haproxy.ts";

const text = (s: string) => new TextEncoder().encode(s);

function proxyV2(source: number[], port: number): Uint8Array {
  const signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
  const v6 = source.length === 16;
  const body = [
    ...source,
    ...new Array(source.length).fill(0), // destination
    port >> 8,
    port & 0xff,
    0x9c,
    0x47, // destination port 40007
  ];
  return new Uint8Array([...signature, 0x21, v6 ? 0x21 : 0x11, 0, body.length, ...body]);
}

Deno.test("PROXY v1 and v2 headers from a trusted proxy name the client; others are plain", async () => {
  const echod = await startEchod([
    "--proxy-protocol",
    "--trusted-proxy",
    "127.0.0.1",
    "--log-level",
    "debug",
    "--metrics",
    "127.0.0.1:0",
  ]);
  try {
    const v1 = await connect("127.0.0.1", echod.port);
    await writeAll(
      v1,
      new TextEncoder().encode("PROXY TCP4 203.0.113.7 192.0.2.1 5555 40007\r\nhello"),
    );
    assert.equal(new TextDecoder().decode(await readExactly(v1, 5)), "hello");
    assert.equal(await roundTrip(v1, " again"), " again");
    v1.close();
    await echod.waitFor((r) => r.message === "open 203.0.113.7:5555");

    const v2 = await connect("127.0.0.1", echod.port);
    const source = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    await writeAll(v2, proxyV2(source, 6666));
    assert.equal(await roundTrip(v2, "binary header"), "binary header");
    v2.close();
    await echod.waitFor((r) => r.message === "open [2001:db8::7]:6666");

    // A trusted proxy without a header is cut off and counted.
    const bare = await connect("127.0.0.1", echod.port);
    await writeAll(bare, new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
    assert.ok(await closedByPeer(bare));
    bare.close();
    // Anyone else is not expected to send a header: plain echo.
    const direct = await connect("::1", echod.port);
    assert.equal(await roundTrip(direct, "PROXY is just data here"), "PROXY is just data here");
    direct.close();
    const { text } = await scrape(echod);
    assert.equal(metric(text, 'echod_connections_refused_total{reason="proxy-header"}'), 1);
  } finally {
    await echod.stop();
  }
});

/** A v2 PROXY header for a Unix-socket frontend (`familyTransport` 0x31 or 0x32), then a TLV. */
function proxyV2Unix(familyTransport: number, blockLength = 216): Uint8Array {
  const signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
  const paths = new TextEncoder().encode("/run/haproxy/echo.sock".padEnd(216, "\0"));
  const body = [...paths.subarray(0, blockLength), 0x04, 0, 2, 0xaa, 0xbb]; // a NOOP TLV
  return new Uint8Array([
    ...signature,
    0x21,
    familyTransport,
    body.length >> 8,
    body.length & 0xff,
    ...body,
  ]);
}

Deno.test("PROXY v2 from a Unix-socket frontend: the connection's own address stands, the block and TLVs are skipped", async () => {
  const echod = await startEchod([
    "--proxy-protocol",
    "--trusted-proxy",
    "127.0.0.1",
    "--greeting={client}|{proxy}",
    "--log-level",
    "debug",
    "--metrics",
    "127.0.0.1:0",
  ]);
  try {
    for (const familyTransport of [0x31, 0x32]) {
      const conn = await connect("127.0.0.1", echod.port);
      const peer = `127.0.0.1:${conn.localAddr.port}`;
      try {
        // The header, its TLV and the first data in one write: nothing of
        // the 221-byte block may leak into the echo.
        await writeAll(conn, new Uint8Array([...proxyV2Unix(familyTransport), ...text("first")]));
        const { line, rest } = await readLine(conn);
        assert.equal(line, `${peer}|-`, `0x${familyTransport.toString(16)}: the greeting`);
        const echoed = new Uint8Array([...rest, ...await readExactly(conn, 5 - rest.length)]);
        assert.equal(new TextDecoder().decode(echoed), "first");
        assert.equal(await roundTrip(conn, " and more"), " and more");
      } finally {
        conn.close();
      }
      await echod.waitFor((r) => r.message === `open ${peer}`);
    }
    // A declared length shorter than the 216-byte AF_UNIX block is refused.
    const short = await connect("127.0.0.1", echod.port);
    await writeAll(short, proxyV2Unix(0x31, 100));
    assert.ok(await closedByPeer(short));
    short.close();
    await echod.waitFor((r) => /refused 127\.0\.0\.1: proxy-header \(.*too short/.test(r.message));
    const { text: page } = await scrape(echod);
    assert.equal(metric(page, 'echod_connections_refused_total{reason="proxy-header"}'), 1);
  } finally {
    await echod.stop();
  }
});

Deno.test("per-IP limits count the client named in the PROXY header, not the proxy", async () => {
  const echod = await startEchod([
    "--proxy-protocol",
    "--trusted-proxy",
    "127.0.0.0/8",
    "--max-conns-per-ip",
    "1",
  ]);
  const open: Deno.Conn[] = [];
  try {
    const via = async (client: string) => {
      const conn = await connect("127.0.0.1", echod.port);
      await writeAll(
        conn,
        new TextEncoder().encode(`PROXY TCP4 ${client} 127.0.0.1 1000 40007\r\n`),
      );
      open.push(conn);
      return conn;
    };
    assert.equal(await roundTrip(await via("198.51.100.1"), "a"), "a");
    assert.equal(await roundTrip(await via("198.51.100.2"), "b"), "b");
    assert.ok(await closedByPeer(await via("198.51.100.1")), "a second connection of one client");
  } finally {
    open.forEach(closeQuietly);
    await echod.stop();
  }
});

if (!HAS_HAPROXY) console.log("skipping the HAProxy test: haproxy is not installed");

Deno.test({
  name: "behind HAProxy (send-proxy-v2, round robin): true client addresses and per-client limits",
  ignore: !HAS_HAPROXY,
  async fn() {
    const args = ["--proxy-protocol", "--trusted-proxy", "127.0.0.1", "--max-conns-per-ip", "1"];
    const a = await startEchod([...args, "--log-level", "debug"]);
    const b = await startEchod([...args, "--log-level", "debug"]);
    const haproxy = await startHaproxy([a.port, b.port], { sendProxy: "send-proxy-v2" });
    const port = haproxy.port;
    const open: Deno.Conn[] = [];
    try {
      // Four clients from ::1, spread over both backends: each backend
      // admits one (the limit is one per client address) and refuses the rest.
      const fromV6: boolean[] = [];
      for (let i = 0; i < 4; i++) {
        const conn = await connect("::1", port);
        open.push(conn);
        try {
          fromV6.push(await roundTrip(conn, `v6 ${i}`) === `v6 ${i}`);
        } catch {
          fromV6.push(false);
        }
      }
      assert.equal(fromV6.filter((ok) => ok).length, 2, String(fromV6));
      // HAProxy itself connects from 127.0.0.1; a client from 127.0.0.1 is
      // a different client from ::1 and is admitted.
      const fromV4 = await connect("127.0.0.1", port);
      open.push(fromV4);
      assert.equal(await roundTrip(fromV4, "v4 client"), "v4 client");
      for (const echod of [a, b]) {
        const opened = echod.records.filter((r) => r.message.startsWith("open "));
        const v6 = opened.filter((r) => /^open \[::1\]:\d+$/.test(r.message));
        assert.equal(v6.length, 1, "each backend admits one ::1 client, seen as ::1");
        assert.ok(
          !opened.some((r) => r.message === `open 127.0.0.1:${port}`),
          "the proxy's address was taken for the client's",
        );
      }
    } finally {
      open.forEach(closeQuietly);
      await haproxy.stop();
      await a.stop();
      await b.stop();
    }
  },
});
