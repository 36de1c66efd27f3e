/**
 * Readiness that follows the drain: `/readyz` answers 200 while echod
 * accepts and 503 from the first SIGTERM on; `--shutdown-delay` keeps
 * accepting (and echoing) that long with `/readyz` failing, then the drain
 * runs as before; a second signal cuts the delay short. (On Windows the
 * test asks with `POST /quitquitquit` instead of a signal: see `SIGNALS`.)
 */

import assert from "node:assert/strict";
import { closeQuietly, connect, roundTrip } from "./_client.ts";
import { startEchod } from "./_echod.ts";
import { metric, scrape } from "./_metrics.ts";

Deno.test("/readyz answers 200 ready while accepting; echod_draining is 0", async () => {
  const echod = await startEchod(["--metrics", "127.0.0.1:0"]);
  try {
    assert.deepEqual(await scrape(echod, "/readyz"), { status: 200, text: "ready\n" });
    assert.deepEqual(await scrape(echod, "/healthz"), { status: 200, text: "ok\n" });
    assert.equal(metric((await scrape(echod)).text, "echod_draining"), 0);
  } finally {
    await echod.stop();
  }
});

Deno.test("--shutdown-delay: after SIGTERM /readyz is 503 draining while new connections are still echoed, then the drain, exit 0", async () => {
  const echod = await startEchod(["--metrics", "127.0.0.1:0", "--shutdown-delay", "2s"]);
  const held = await connect("127.0.0.1", echod.port);
  assert.equal(await roundTrip(held, "before"), "before");
  const signalled = performance.now();
  await echod.requestStop();
  await echod.waitForMessage("not ready (/readyz answers 503)");
  assert.deepEqual(await scrape(echod, "/readyz"), { status: 503, text: "draining\n" });
  assert.equal((await scrape(echod, "/healthz")).status, 200, "liveness holds while draining");
  assert.equal(metric((await scrape(echod)).text, "echod_draining"), 1);
  // Load balancers that have not caught up yet still get served.
  const late = await connect("::1", echod.port);
  assert.equal(await roundTrip(late, "during the delay"), "during the delay");
  assert.equal(await roundTrip(held, "held"), "held");
  await echod.waitForMessage("shutdown delay over: no longer accepting connections");
  await echod.waitForMessage("draining 2 connections");
  const delayed = performance.now() - signalled;
  assert.ok(delayed >= 1_900, `accepting stopped ${delayed.toFixed(0)} ms after SIGTERM`);
  await assert.rejects(connect("127.0.0.1", echod.port), Deno.errors.ConnectionRefused);
  closeQuietly(late);
  closeQuietly(held);
  const { code } = await echod.exited();
  assert.equal(code, 0);
  const stopped = await echod.waitForMessage("stopped");
  assert.equal(stopped.accepted, 2);
});

Deno.test("a second SIGTERM during --shutdown-delay stops at once", async () => {
  const echod = await startEchod(["--shutdown-delay", "10m"]);
  await echod.requestStop();
  await echod.waitForMessage("not ready (/readyz answers 503)");
  const again = performance.now();
  await echod.requestStop();
  const { code } = await echod.exited();
  assert.equal(code, 0);
  assert.ok(performance.now() - again < 5_000, "stopped within 5 s of the second signal");
});
