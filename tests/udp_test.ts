/**
 * UDP echo: both families, reflector ports, per-source rate.
 */

import assert from "node:assert/strict";
import { udpSocket } from "./_client.ts";
import { startEchod } from "./_echod.ts";
import { metric, scrape } from "./_metrics.ts";
import { poll } from "./_poll.ts";

Deno.test("--udp echoes datagrams over IPv4 and IPv6", async () => {
  const echod = await startEchod(["--udp", "--metrics", "127.0.0.1:0"]);
  try {
    assert.match(String(echod.ready?.message), /; UDP on \[::\]:\d+/);
    for (const host of ["127.0.0.1", "::1"]) {
      const socket = await udpSocket(host);
      const data = new TextEncoder().encode(`datagram over ${host}`);
      await socket.send(data, { transport: "udp", hostname: host, port: echod.port });
      const [echoed] = await socket.receive();
      assert.deepEqual(echoed, data);
      socket.close();
    }
    const { text } = await scrape(echod);
    assert.equal(metric(text, "echod_udp_datagrams_echoed_total"), 2);
  } finally {
    await echod.stop();
  }
});

// Binding a UDP socket to port 19 needs root (or CAP_NET_BIND_SERVICE).
let canBindChargen = false;
try {
  (await udpSocket("127.0.0.1", 19)).close();
  canBindChargen = true;
} catch {
  console.log("skipping the reflector-port test: cannot bind UDP port 19 without privilege");
}

Deno.test({
  name:
    "--udp does not answer a datagram from a reflector port (19, chargen), on each family's socket",
  ignore: !canBindChargen,
  async fn() {
    const echod = await startEchod(["--udp", "--metrics", "127.0.0.1:0"]);
    try {
      for (const [i, host] of ["127.0.0.1", "::1"].entries()) {
        const chargen = await udpSocket(host, 19);
        const probe = await udpSocket(host);
        try {
          const to = { transport: "udp" as const, hostname: host, port: echod.port };
          await chargen.send(new Uint8Array([1, 2, 3]), to);
          // Datagrams from one family reach one socket (on Windows `::` is
          // IPv6-only), handled in order: once the probe is answered, the
          // one from port 19 has been dealt with.
          await probe.send(new Uint8Array([9]), to);
          await probe.receive();
          const { text } = await scrape(echod);
          assert.equal(
            metric(text, 'echod_udp_datagrams_dropped_total{reason="reflector-port"}'),
            i + 1,
            host,
          );
          assert.equal(metric(text, "echod_udp_datagrams_echoed_total"), i + 1, host);
        } finally {
          chargen.close();
          probe.close();
        }
      }
      const warning = await echod.waitForMessage("dropped a datagram");
      assert.equal(warning.reason, "reflector-port");
    } finally {
      await echod.stop();
    }
  },
});

Deno.test("--udp-rate cuts a flood from one source while another source is served, from either family", async () => {
  for (const [flooding, served] of [["127.0.0.1", "::1"], ["::1", "127.0.0.1"]]) {
    const echod = await startEchod(["--udp", "--udp-rate", "5", "--metrics", "127.0.0.1:0"]);
    const flooder = await udpSocket(flooding);
    const other = await udpSocket(served);
    try {
      for (let i = 0; i < 50; i++) {
        await flooder.send(new Uint8Array([i]), {
          transport: "udp",
          hostname: flooding,
          port: echod.port,
        });
      }
      await other.send(new Uint8Array([42]), {
        transport: "udp",
        hostname: served,
        port: echod.port,
      });
      const [answer] = await other.receive();
      assert.deepEqual(answer, new Uint8Array([42]));
      // The two families may reach different sockets (Windows): wait until
      // echod has counted every datagram of the flood, answered or dropped.
      const counted = (text: string) =>
        metric(text, "echod_udp_datagrams_echoed_total") +
        metric(text, 'echod_udp_datagrams_dropped_total{reason="source-rate"}');
      const text = await poll(async () => {
        const { text } = await scrape(echod);
        return counted(text) === 51 ? text : undefined;
      }, { what: `echod to count the flood from ${flooding}`, timeoutMs: 10_000 });
      const echoed = metric(text, "echod_udp_datagrams_echoed_total") - 1;
      assert.ok(
        echoed >= 5 && echoed <= 7,
        `${echoed} of the flood from ${flooding} answered at 5/s`,
      );
    } finally {
      flooder.close();
      other.close();
      await echod.stop();
    }
  }
});
