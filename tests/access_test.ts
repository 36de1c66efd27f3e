/**
 * Access control: --allow/--deny for TCP and UDP, and --accept-rate.
 */

import assert from "node:assert/strict";
import {
  closedByPeer,
  closeQuietly,
  connect,
  MAPPED_LOOPBACK,
  roundTrip,
  udpSocket,
} from "./_client.ts";
import { startEchod } from "./_echod.ts";
import { metric, metricReaching, scrape } from "./_metrics.ts";

// The tests that rely on one UDP socket's ordering need a dual-stack `::`.

Deno.test("--allow and --deny: CIDR blocks, IPv4-mapped peers as IPv4, deny wins", async () => {
  const cases: [string[], Record<string, boolean>][] = [
    [["--deny", "::1"], { "127.0.0.1": true, "::1": false }],
    [["--allow", "127.0.0.0/8"], { "127.0.0.1": true, [MAPPED_LOOPBACK]: true, "::1": false }],
    [["--allow", "127.0.0.0/8", "--deny", "127.0.0.1/32"], { "127.0.0.1": false, "::1": false }],
    [["--allow", "::1/128", "--allow", "::ffff:127.0.0.0/104"], { "127.0.0.1": true, "::1": true }],
  ];
  for (const [args, expected] of cases) {
    const echod = await startEchod([...args, "--metrics", "127.0.0.1:0"]);
    try {
      let refused = 0;
      for (const [host, admitted] of Object.entries(expected)) {
        const conn = await connect(host, echod.port);
        if (admitted) assert.equal(await roundTrip(conn, "in"), "in", `${args} ${host}`);
        else assert.ok(await closedByPeer(conn), `${args.join(" ")}: ${host} was let in`);
        if (!admitted) refused++;
        conn.close();
      }
      const { text } = await scrape(echod);
      assert.equal(metric(text, 'echod_connections_refused_total{reason="denied"}'), refused);
    } finally {
      await echod.stop();
    }
  }
});

Deno.test("--deny applies to UDP too, on each family's socket", async () => {
  for (const [denied, allowed] of [["::1", "127.0.0.1"], ["127.0.0.1", "::1"]]) {
    const echod = await startEchod(["--udp", "--deny", denied, "--metrics", "127.0.0.1:0"]);
    const deniedSocket = await udpSocket(denied);
    const allowedSocket = await udpSocket(allowed);
    try {
      await deniedSocket.send(new Uint8Array([1]), {
        transport: "udp",
        hostname: denied,
        port: echod.port,
      });
      await allowedSocket.send(new Uint8Array([2]), {
        transport: "udp",
        hostname: allowed,
        port: echod.port,
      });
      assert.deepEqual((await allowedSocket.receive())[0], new Uint8Array([2]));
      // The two families may reach different sockets (Windows), in any order.
      const dropped = await metricReaching(
        echod,
        'echod_udp_datagrams_dropped_total{reason="denied"}',
        { atLeast: 1 },
      );
      assert.equal(dropped, 1, `from ${denied}`);
    } finally {
      deniedSocket.close();
      allowedSocket.close();
      await echod.stop();
    }
  }
});

Deno.test("--accept-rate limits new connections per address, not across addresses", async () => {
  const echod = await startEchod(["--accept-rate", "3", "--metrics", "127.0.0.1:0"]);
  const open: Deno.Conn[] = [];
  try {
    let admitted = 0;
    for (let i = 0; i < 10; i++) {
      const conn = await connect("127.0.0.1", echod.port);
      try {
        if (await roundTrip(conn, "x") === "x") admitted++;
        open.push(conn);
      } catch {
        conn.close();
      }
    }
    assert.ok(admitted >= 3 && admitted <= 4, `${admitted} of 10 admitted at 3/s`);
    const v6 = await connect("::1", echod.port);
    assert.equal(await roundTrip(v6, "other address"), "other address");
    open.push(v6);
    const { text } = await scrape(echod);
    assert.equal(
      metric(text, 'echod_connections_refused_total{reason="accept-rate"}'),
      10 - admitted,
    );
  } finally {
    open.forEach(closeQuietly);
    await echod.stop();
  }
});
