/**
 * Small pieces in-process: durations, peer keys, admission, the log throttle.
 */

import assert from "node:assert/strict";
import { Admission, peerKey } from "../lib/admission.ts";
import { formatDuration, parseDuration } from "../lib/units.ts";
import { LogThrottle } from "../lib/log.ts";

Deno.test("parseDuration reads ms, s, m, h and 0; rejects the rest", () => {
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

Deno.test("formatDuration picks the largest exact unit", () => {
  assert.equal(formatDuration(0), "0");
  assert.equal(formatDuration(300_000), "5m");
  assert.equal(formatDuration(90_000), "90s");
  assert.equal(formatDuration(3_600_000), "1h");
  assert.equal(formatDuration(250), "250ms");
});

Deno.test("peerKey counts IPv4-mapped IPv6 peers as IPv4", () => {
  assert.equal(peerKey("::ffff:192.0.2.1"), "192.0.2.1");
  assert.equal(peerKey("::FFFF:10.0.0.1"), "10.0.0.1");
  assert.equal(peerKey("192.0.2.1"), "192.0.2.1");
  assert.equal(peerKey("2001:db8::1"), "2001:db8::1");
  assert.equal(peerKey("::ffff:abcd:1"), "::ffff:abcd:1");
});

Deno.test("Admission enforces total and per-address limits and releases", () => {
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

Deno.test("Admission with 0 means unlimited", () => {
  const admission = new Admission({ maxConns: 0, maxConnsPerIp: 0 });
  for (let i = 0; i < 100_000; i++) {
    assert.equal(admission.admit("a"), undefined);
  }
  assert.equal(admission.active, 100_000);
});

Deno.test("LogThrottle lets one through per interval and counts the rest", () => {
  const throttle = new LogThrottle(1_000);
  assert.equal(throttle.take(0), 0);
  assert.equal(throttle.take(10), undefined);
  assert.equal(throttle.take(999), undefined);
  assert.equal(throttle.take(1_000), 2);
  assert.equal(throttle.take(1_500), undefined);
  assert.equal(throttle.take(2_500), 1);
});
