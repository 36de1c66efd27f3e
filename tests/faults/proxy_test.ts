/**
 * The PROXY protocol under attack, from a trusted address: malformed and
 * lying headers are refused and counted, the client's address is counted
 * in one canonical form, and a flood of silent or slow proxy connections
 * stays within --max-conns while real clients are served.
 */

import assert from "node:assert/strict";
import { closedByPeer, closeQuietly, connect, roundTrip, writeAll } from "../_client.ts";
import { startEchod } from "../_echod.ts";
import { metric, metricReaching, scrape } from "../_metrics.ts";

const text = (s: string) => new TextEncoder().encode(s);

/** A v2 PROXY header for TCP over IPv6 from `source` (16 bytes). */
function v2Tcp6(source: number[], port: number): Uint8Array {
  const signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
  const body = [...source, ...new Array(16).fill(0), port >> 8, port & 0xff, 0x9c, 0x47];
  return new Uint8Array([...signature, 0x21, 0x21, 0, body.length, ...body]);
}

const MAPPED_127_0_0_1 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];

Deno.test("PROXY: lying and malformed headers are refused and counted, even with a deny list", async () => {
  const echod = await startEchod([
    "--proxy-protocol",
    "--trusted-proxy",
    "127.0.0.1",
    "--deny",
    "10.0.0.0/8",
    "--metrics",
    "127.0.0.1:0",
  ]);
  try {
    const headers = [
      `PROXY TCP4 ${"1".repeat(480)} 1.2.3.4 1 2\r\n`, // 500 bytes in one read
      "PROXY TCP4 999.999.999.999 192.0.2.1 1 2\r\n",
      "PROXY TCP6 :zz: ::1 1 2\r\n",
      "PROXY TCP4 010.001.002.003 192.0.2.1 1 2\r\n", // would be 10.1.2.3, denied
    ];
    for (const header of headers) {
      const conn = await connect("127.0.0.1", echod.port);
      await writeAll(conn, text(header + "data")).catch(() => {});
      assert.ok(await closedByPeer(conn), header.slice(0, 40));
      conn.close();
    }
    // A v2 header for a datagram flow is not a TCP connection.
    const dgram = await connect("127.0.0.1", echod.port);
    const header = v2Tcp6(MAPPED_127_0_0_1, 1000);
    header[13] = 0x22;
    await writeAll(dgram, header);
    assert.ok(await closedByPeer(dgram));
    dgram.close();
    assert.equal(
      metric((await scrape(echod)).text, 'echod_connections_refused_total{reason="proxy-header"}'),
      headers.length + 1,
    );
  } finally {
    await echod.stop();
  }
});

Deno.test("PROXY: one client in any spelling shares one --max-conns-per-ip allowance", async () => {
  const echod = await startEchod([
    "--proxy-protocol",
    "--trusted-proxy",
    "127.0.0.1",
    "--max-conns-per-ip",
    "2",
  ]);
  const open: Deno.Conn[] = [];
  try {
    const via = async (header: Uint8Array) => {
      const conn = await connect("127.0.0.1", echod.port);
      open.push(conn);
      await writeAll(conn, header);
      return conn;
    };
    // HAProxy `bind :::P v4v6` + send-proxy-v2 reports an IPv4 client as ::ffff:7f00:1.
    assert.equal(await roundTrip(await via(v2Tcp6(MAPPED_127_0_0_1, 1)), "a"), "a");
    assert.equal(
      await roundTrip(await via(text("PROXY TCP4 127.0.0.1 127.0.0.1 2 7\r\n")), "b"),
      "b",
    );
    assert.ok(
      await closedByPeer(await via(v2Tcp6(MAPPED_127_0_0_1, 3))),
      "a third, as ::ffff:7f00:1",
    );
    // Four spellings of one IPv6 address.
    const spellings = ["2001:db8::2", "2001:0db8::2", "2001:DB8::2", "2001:db8:0::2"];
    const conns = [];
    for (const spelling of spellings) {
      conns.push(await via(text(`PROXY TCP6 ${spelling} ::1 4 7\r\n`)));
    }
    assert.equal(await roundTrip(conns[0], "c"), "c");
    assert.equal(await roundTrip(conns[1], "d"), "d");
    assert.ok(await closedByPeer(conns[2]), "a third connection of 2001:db8::2");
    assert.ok(await closedByPeer(conns[3]), "a fourth connection of 2001:db8::2");
  } finally {
    open.forEach(closeQuietly);
    await echod.stop();
  }
});

// Wine's sockets (the Windows lane) accept slowly past a few hundred
// connections at once: the flood there is smaller, the same in proportion.
const FLOOD = Deno.build.os === "windows" ? 400 : 1_000;
const FLOOD_MAX_CONNS = FLOOD / 5;

Deno.test(`PROXY flood from a trusted address: ${FLOOD} silent connections stay within --max-conns; clients are served`, async () => {
  const echod = await startEchod([
    "--proxy-protocol",
    "--trusted-proxy",
    "127.0.0.1",
    "--max-conns",
    String(FLOOD_MAX_CONNS),
    "--metrics",
    "127.0.0.1:0",
  ]);
  const silent: Deno.Conn[] = [];
  try {
    for (let i = 0; i < FLOOD; i += 100) {
      silent.push(
        ...await Promise.all(Array.from({ length: 100 }, () => connect("127.0.0.1", echod.port))),
      );
    }
    // Past --max-conns waiting headers, the proxy's further connections are refused at once.
    const refused = await metricReaching(
      echod,
      'echod_connections_refused_total{reason="max-conns"}',
      { atLeast: FLOOD - FLOOD_MAX_CONNS },
    );
    assert.ok(refused >= FLOOD - FLOOD_MAX_CONNS, `${refused} refused`);
    // A client that is not the proxy is served.
    silent.splice(0, 100).forEach(closeQuietly);
    const direct = await connect("::1", echod.port);
    assert.equal(await roundTrip(direct, "served"), "served");
    direct.close();
  } finally {
    silent.forEach(closeQuietly);
    await echod.stop();
  }
});
