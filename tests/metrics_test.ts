/**
 * Metrics: /metrics counts exactly what flowed; /healthz answers.
 */

import assert from "node:assert/strict";
import { closedByPeer, connect, readExactly, writeAll } from "./_client.ts";
import { startEchod } from "./_echod.ts";
import { metric, scrape } from "./_metrics.ts";

Deno.test("/metrics counts exactly the traffic that flowed; /healthz answers", async () => {
  const echod = await startEchod([
    "--metrics",
    "127.0.0.1:0",
    "--max-conns",
    "2",
    "--log-level",
    "debug",
  ]);
  try {
    assert.deepEqual(await scrape(echod, "/healthz"), { status: 200, text: "ok\n" });
    assert.equal((await scrape(echod, "/nope")).status, 404);
    const before = (await scrape(echod)).text;
    assert.match(before, /^# HELP echod_connections_active /m);
    assert.match(before, /^# TYPE echod_connections_accepted_total counter$/m);
    assert.equal(metric(before, "echod_connections_accepted_total"), 0);

    const a = await connect("127.0.0.1", echod.port);
    const b = await connect("::1", echod.port);
    await writeAll(a, new Uint8Array(700));
    await readExactly(a, 700);
    await writeAll(b, new Uint8Array(300));
    await readExactly(b, 300);
    const third = await connect("127.0.0.1", echod.port);
    assert.ok(await closedByPeer(third));
    third.close();
    const during = (await scrape(echod)).text;
    assert.equal(metric(during, "echod_connections_active"), 2);
    assert.equal(metric(during, "echod_connections_accepted_total"), 3);
    assert.equal(metric(during, 'echod_connections_refused_total{reason="max-conns"}'), 1);
    assert.equal(metric(during, "echod_received_bytes_total"), 1000);
    assert.equal(metric(during, "echod_sent_bytes_total"), 1000);

    a.close();
    b.close();
    let closes = 0;
    await echod.waitFor((r) => r.message.startsWith("close ") && ++closes === 2);
    const after = (await scrape(echod)).text;
    assert.equal(metric(after, "echod_connections_active"), 0);
    assert.ok(metric(after, "echod_uptime_seconds") > 0);
  } finally {
    await echod.stop();
  }
});
