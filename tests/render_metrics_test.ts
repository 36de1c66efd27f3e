/** renderMetrics(), in-process: every counter exported once, under its family and reason. */

import assert from "node:assert/strict";
import { NOT_EXPORTED, renderMetrics } from "../lib/serve/metrics.ts";
import { type Counter, Stats } from "../lib/serve/stats.ts";

Deno.test("renderMetrics() exports every counter exactly once, with the reasons the server counts by", () => {
  const stats = new Stats();
  const counters = (Object.keys(stats.count) as Counter[])
    .filter((counter) => !(NOT_EXPORTED as readonly Counter[]).includes(counter));
  counters.forEach((counter, i) => stats.count[counter] = 1000 + i);
  for (const counter of NOT_EXPORTED) stats.count[counter] = 999;
  const text = renderMetrics(stats.snapshot(), 12.5);
  const samples = text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  // One sample per counter, plus uptime and draining.
  assert.equal(samples.length, counters.length + 2);
  const values = samples.map((l) => Number(l.split(" ").at(-1)));
  for (const [i] of counters.entries()) assert.ok(values.includes(1000 + i), counters[i]);
  assert.ok(!values.includes(999), "a counter that is not exported was");
  const expected = [
    `echod_connections_refused_total{reason="max-conns-per-ip"} ${stats.count.refusedMaxConnsPerIp}`,
    `echod_connections_expired_total{reason="tls-handshake"} ${stats.count.tlsHandshakeTimeouts}`,
    `echod_udp_datagrams_dropped_total{reason="loop"} ${stats.count.udpDroppedLoop}`,
    `echod_connections_active ${stats.count.active}`,
    "echod_uptime_seconds 12.500",
  ];
  for (const line of expected) assert.ok(samples.includes(line), line);
  // Every family is announced before its samples.
  for (const family of new Set(samples.map((l) => l.split(/[{ ]/)[0]))) {
    assert.ok(text.includes(`# TYPE ${family} `), family);
  }
});

Deno.test("renderMetrics() reports a counter missing from a snapshot as 0", () => {
  const text = renderMetrics({ active: 3 }, 0);
  assert.match(text, /^echod_connections_active 3$/m);
  assert.match(text, /^echod_sent_bytes_total 0$/m);
});
