/**
 * `--quitquitquit`: `POST /quitquitquit` on the metrics endpoint stops
 * echod as SIGTERM does (the drain, the totals, exit 0); any other method
 * there is refused; without the flag the path is not served.
 */

import assert from "node:assert/strict";
import { closeQuietly, connect, roundTrip } from "./_client.ts";
import { runEchod, startEchod } from "./_echod.ts";
import { rawRequest, scrape } from "./_metrics.ts";

Deno.test("--quitquitquit without --metrics: one line, exit 2", async () => {
  const { code, stderr } = await runEchod(["--port", "0", "--quitquitquit"]);
  assert.equal(code, 2);
  assert.equal(
    stderr,
    "echod: --quitquitquit needs --metrics: POST /quitquitquit is served there\n",
  );
});

Deno.test("POST /quitquitquit drains as SIGTERM does; GET there is refused and echod serves on", async () => {
  const echod = await startEchod([
    "--metrics",
    "127.0.0.1:0",
    "--quitquitquit",
    "--drain-timeout",
    "1h",
  ]);
  const conn = await connect("::1", echod.port);
  try {
    assert.equal(await roundTrip(conn, "before"), "before");
    const get = await rawRequest(echod, "GET /quitquitquit HTTP/1.1\r\nhost: x\r\n\r\n");
    assert.match(get.answer, /^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    assert.match(get.answer, /\r\nallow: POST\r\n/);
    assert.equal(await roundTrip(conn, "after GET"), "after GET");
    // A body the endpoint does not read is taken, not left to reset the answer.
    const post = await rawRequest(
      echod,
      "POST /quitquitquit HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello",
    );
    assert.match(post.answer, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nstopping\n$/);
    await echod.waitForMessage("received POST /quitquitquit: no longer accepting connections");
    await echod.waitForMessage("draining 1 connections");
    assert.deepEqual(await scrape(echod, "/readyz"), { status: 503, text: "draining\n" });
    await assert.rejects(connect("127.0.0.1", echod.port), Deno.errors.ConnectionRefused);
    assert.equal(await roundTrip(conn, "during the drain"), "during the drain");
  } finally {
    closeQuietly(conn);
  }
  assert.equal((await echod.exited()).code, 0);
  const stopped = await echod.waitForMessage("stopped");
  assert.equal(stopped.bytesOut, "beforeafter GETduring the drain".length);
});

Deno.test("without --quitquitquit, POST /quitquitquit is refused and echod serves on", async () => {
  const echod = await startEchod(["--metrics", "127.0.0.1:0"], {
    // On Windows the harness would enable the endpoint to stop echod; here it must stay off.
    noStopEndpoint: true,
  });
  try {
    const post = await rawRequest(echod, "POST /quitquitquit HTTP/1.1\r\nhost: x\r\n\r\n");
    assert.match(post.answer, /^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    assert.equal((await scrape(echod, "/quitquitquit")).status, 404);
    const conn = await connect("127.0.0.1", echod.port);
    assert.equal(await roundTrip(conn, "still here"), "still here");
    conn.close();
    assert.ok(!echod.records.some((r) => r.message.startsWith("received")));
  } finally {
    await echod.stop("SIGKILL");
  }
});
