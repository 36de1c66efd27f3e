/**
 * UDP echo under attack: a loop with another echo service, datagrams from
 * echod's own port, and floods from many sources. A loop must die after a
 * handful of echoes, and echod must keep answering a good client.
 */

import assert from "node:assert/strict";
import { udpSocket } from "../_client.ts";
import { metric, scrape } from "../_metrics.ts";
import { type Echod, skipUnless, startEchod, WHOLE_LOOPBACK } from "../_echod.ts";

const NO_127_8 = "it binds other addresses of 127/8, which macOS does not answer unless aliased";

// Windows' `::` is IPv6-only: IPv4 and IPv6 datagrams reach different
// sockets, which does not change these cases, so they run everywhere.

/** Datagrams `socket` receives until `quietMs` pass without one. */
async function countUntilQuiet(
  socket: Deno.DatagramConn,
  quietMs: number,
  onEach?: (data: Uint8Array, from: Deno.Addr) => void,
): Promise<number> {
  let count = 0;
  for (;;) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const quiet = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), quietMs);
    });
    const got = await Promise.race([socket.receive(), quiet]);
    clearTimeout(timer);
    if (got === null) return count;
    count++;
    onEach?.(got[0], got[1]);
  }
}

async function dropped(echod: Echod, reason: string): Promise<number> {
  return metric(
    (await scrape(echod)).text,
    `echod_udp_datagrams_dropped_total{reason="${reason}"}`,
  );
}

Deno.test("UDP: a loop with a naive echo service dies after a few echoes (it was 101 each way)", async () => {
  const echod = await startEchod(["--udp", "--metrics", "127.0.0.1:0"]);
  // A reflector on a high port that answers everything, as another echo server would.
  const reflector = udpSocket("127.0.0.1");
  try {
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port: echod.port };
    await reflector.send(new TextEncoder().encode("ping-pong"), to);
    const bounced = await countUntilQuiet(reflector, 500, (data, from) => {
      reflector.send(data, from).catch(() => {});
    });
    assert.ok(bounced >= 1 && bounced <= 5, `echod answered the loop ${bounced} times`);
    assert.ok(await dropped(echod, "loop") >= 1);
    // The same source sending something new is answered again.
    await reflector.send(new TextEncoder().encode("a real question"), to);
    const [answer] = await reflector.receive();
    assert.equal(new TextDecoder().decode(answer), "a real question");
  } finally {
    reflector.close();
    await echod.stop();
  }
});

Deno.test("UDP: a client repeating the same datagram once a second is always answered", async () => {
  const echod = await startEchod(["--udp"]);
  const client = udpSocket("127.0.0.1");
  try {
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port: echod.port };
    for (let i = 0; i < 6; i++) {
      await client.send(new TextEncoder().encode("health"), to);
      const [answer] = await client.receive();
      assert.equal(new TextDecoder().decode(answer), "health");
      if (i < 5) await new Promise((r) => setTimeout(r, 1_050)); // the interval under test
    }
  } finally {
    client.close();
    await echod.stop();
  }
});

Deno.test({
  name: "UDP: a datagram from echod's own port number (another echod) is not answered",
  ignore: skipUnless(WHOLE_LOOPBACK, "the UDP twin test", NO_127_8),
  async fn() {
    const echod = await startEchod(["--udp", "--host", "127.0.0.1", "--metrics", "127.0.0.1:0"]);
    const twin = udpSocket("127.0.0.2", echod.port);
    try {
      const to = { transport: "udp" as const, hostname: "127.0.0.1", port: echod.port };
      await twin.send(new Uint8Array([1, 2, 3]), to);
      assert.equal(await countUntilQuiet(twin, 300), 0);
      assert.equal(await dropped(echod, "reflector-port"), 1);
    } finally {
      twin.close();
      await echod.stop();
    }
  },
});

Deno.test({
  name:
    "UDP: a flood from 1,000 source addresses is held to --udp-max-rate (200/s); a good client is answered",
  ignore: skipUnless(WHOLE_LOOPBACK, "the UDP many-source flood", NO_127_8),
  async fn() {
    const echod = await startEchod(["--udp", "--udp-max-rate", "200", "--metrics", "127.0.0.1:0"]);
    const sources = Array.from(
      { length: 1_000 },
      (_, i) => udpSocket(`127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`),
    );
    try {
      const to = { transport: "udp" as const, hostname: "127.0.0.1", port: echod.port };
      const payload = new Uint8Array(200);
      const started = performance.now();
      await Promise.all(sources.map(async (s) => {
        for (let i = 0; i < 5; i++) await s.send(payload, to);
      }));
      const counts = await Promise.all(sources.map((s) => countUntilQuiet(s, 300)));
      const seconds = (performance.now() - started) / 1_000;
      const answered = counts.reduce((a, b) => a + b, 0);
      // Burst of one second's worth, plus the rate for the time it took.
      assert.ok(
        answered <= 2_000 + 2_000 * seconds,
        `${answered} answers in ${seconds.toFixed(1)} s`,
      );
      // The 1,000 sockets are closed before the scrape: under Wine, with them
      // open, an HTTP request of the test's own took more than 10 s.
      sources.splice(0).forEach((s) => s.close());
      assert.ok(await dropped(echod, "global-rate") > 0);
      const good = udpSocket("127.0.0.1");
      await good.send(new Uint8Array([42]), to);
      const [answer] = await good.receive();
      assert.deepEqual(answer, new Uint8Array([42]));
      good.close();
    } finally {
      sources.forEach((s) => s.close());
      await echod.stop();
    }
  },
});
