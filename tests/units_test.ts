/**
 * Small pieces in-process: durations, peer keys, admission, the log throttle.
 */

import assert from "node:assert/strict";
import { Admission, peerKey } from "../lib/serve/admission.ts";
import { parseIp } from "../lib/ip.ts";
import { formatDuration, parseDuration } from "../lib/units.ts";
import { LogThrottle } from "../lib/log.ts";

Deno.test("parseDuration() reads ms, s, m, h and 0; rejects the rest", () => {
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("30s"), 30_000);
  assert.equal(parseDuration("10m"), 600_000);
  assert.equal(parseDuration("1h"), 3_600_000);
  assert.equal(parseDuration("0.5s"), 500);
  assert.equal(parseDuration("0"), 0);
  for (const bad of ["", "30", "s", "-1s", "1d", "1 s", "1e3ms", "1h30m"]) {
    assert.equal(parseDuration(bad), undefined, bad);
  }
});

Deno.test("formatDuration() picks the largest exact unit", () => {
  assert.equal(formatDuration(0), "0");
  assert.equal(formatDuration(300_000), "5m");
  assert.equal(formatDuration(90_000), "90s");
  assert.equal(formatDuration(3_600_000), "1h");
  assert.equal(formatDuration(250), "250ms");
});

Deno.test("peerKey() gives one canonical key per address", () => {
  const cases: [string, string][] = [
    ["::ffff:192.0.2.1", "192.0.2.1"],
    ["::FFFF:10.0.0.1", "10.0.0.1"],
    ["::ffff:7f00:1", "127.0.0.1"], // HAProxy `v4v6` binds report IPv4 clients so
    ["::ffff:abcd:1", "171.205.0.1"],
    ["192.0.2.1", "192.0.2.1"],
    ["2001:db8::2", "2001:db8::2"],
    ["2001:0db8::2", "2001:db8::2"],
    ["2001:DB8::2", "2001:db8::2"],
    ["2001:db8:0::2", "2001:db8::2"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["fe80::1%eth0", "fe80::1"],
  ];
  for (const [text, key] of cases) assert.equal(peerKey(text), key, text);
});

Deno.test("parseIp() refuses what is not exactly an address", () => {
  for (
    const text of [
      "010.001.002.003",
      "999.999.999.999",
      ":zz:",
      "1.2.3",
      "1::2::3",
      "",
      "1.2.3.4.5",
    ]
  ) {
    assert.equal(parseIp(text), undefined, text);
  }
});

Deno.test("Admission.admit() enforces total and per-address limits and releases", () => {
  const admission = new Admission({ maxConns: 3, maxConnsPerIp: 2 });
  assert.equal(admission.admit("a"), undefined);
  assert.equal(admission.admit("a"), undefined);
  assert.equal(admission.admit("a"), "max-conns-per-ip");
  assert.equal(admission.admit("b"), undefined);
  assert.equal(admission.admit("c"), "max-conns");
  assert.equal(admission.active, 3);
  admission.release("a");
  assert.equal(admission.admit("c"), undefined);
  assert.equal(admission.admit("a"), "max-conns");
});

Deno.test("Admission.admit() with 0 means unlimited", () => {
  const admission = new Admission({ maxConns: 0, maxConnsPerIp: 0 });
  for (let i = 0; i < 100_000; i++) {
    assert.equal(admission.admit("a"), undefined);
  }
  assert.equal(admission.active, 100_000);
});

Deno.test("LogThrottle.take() lets one through per interval and counts the rest", () => {
  const throttle = new LogThrottle(1_000);
  assert.equal(throttle.take(0), 0);
  assert.equal(throttle.take(10), undefined);
  assert.equal(throttle.take(999), undefined);
  assert.equal(throttle.take(1_000), 2);
  assert.equal(throttle.take(1_500), undefined);
  assert.equal(throttle.take(2_500), 1);
});
