/**
 * UDP echo: both families, reflector ports, per-source rate.
 */

import assert from "node:assert/strict";
import { udpSocket } from "./_client.ts";
import { DUAL_STACK, skipUnless, startEchod } from "./_echod.ts";
import { metric, scrape } from "./_metrics.ts";

// The tests that rely on one UDP socket's ordering need a dual-stack `::`.

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
  name: "--udp does not answer a datagram from a reflector port (19, chargen)",
  ignore: !canBindChargen ||
    skipUnless(
      DUAL_STACK,
      "the reflector-port test",
      "on Windows `::` is IPv6-only: IPv4 and IPv6 datagrams reach different sockets",
    ),
  async fn() {
    const echod = await startEchod(["--udp", "--metrics", "127.0.0.1:0"]);
    const chargen = await udpSocket("127.0.0.1", 19);
    const probe = await udpSocket("127.0.0.1");
    try {
      const to = { transport: "udp" as const, hostname: "127.0.0.1", port: echod.port };
      await chargen.send(new Uint8Array([1, 2, 3]), to);
      // Datagrams on one socket are handled in order: once the probe is
      // answered, the one from port 19 has been dealt with.
      await probe.send(new Uint8Array([9]), to);
      await probe.receive();
      const { text } = await scrape(echod);
      assert.equal(metric(text, 'echod_udp_datagrams_dropped_total{reason="reflector-port"}'), 1);
      assert.equal(metric(text, "echod_udp_datagrams_echoed_total"), 1);
      const warning = await echod.waitForMessage("dropped a datagram");
      assert.equal(warning.reason, "reflector-port");
    } finally {
      chargen.close();
      probe.close();
      await echod.stop();
    }
  },
});

Deno.test({
  name: "--udp-rate cuts a flood from one source while another source is served",
  ignore: skipUnless(
    DUAL_STACK,
    "the --udp-rate test",
    "on Windows `::` is IPv6-only: IPv4 and IPv6 datagrams reach different sockets",
  ),
}, async () => {
  const echod = await startEchod(["--udp", "--udp-rate", "5", "--metrics", "127.0.0.1:0"]);
  const flooder = await udpSocket("127.0.0.1");
  const other = await udpSocket("::1");
  try {
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port: echod.port };
    for (let i = 0; i < 50; i++) await flooder.send(new Uint8Array([i]), to);
    // The other source is answered (its datagram goes to the same socket,
    // so the flood has been handled by the time the answer comes back).
    await other.send(new Uint8Array([42]), { ...to, hostname: "::1" });
    const [answer] = await other.receive();
    assert.deepEqual(answer, new Uint8Array([42]));
    const { text } = await scrape(echod);
    const echoed = metric(text, "echod_udp_datagrams_echoed_total") - 1;
    const dropped = metric(text, 'echod_udp_datagrams_dropped_total{reason="source-rate"}');
    assert.equal(echoed + dropped, 50);
    assert.ok(echoed >= 5 && echoed <= 7, `${echoed} of the flood answered at 5/s`);
  } finally {
    flooder.close();
    other.close();
    await echod.stop();
  }
});
