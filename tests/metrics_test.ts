/**
 * Metrics: /metrics counts exactly what flowed; /healthz answers.
 */

import assert from "node:assert/strict";
import { closedByPeer, connect, readExactly, writeAll } from "./_client.ts";
import { startEchod } from "./_echod.ts";
import { metric, rawRequest, scrape } from "./_metrics.ts";

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

Deno.test("the metrics endpoint reads requests as RFC 9112 says: absolute form, Host, the request line, bare LF", async () => {
  const echod = await startEchod(["--metrics", "127.0.0.1:0"]);
  // [request, the status line it must get at once]
  const cases: [string, number][] = [
    // Section 3.2.2: a server must accept the absolute form; its host wins over Host.
    ["GET http://h/healthz HTTP/1.1\r\nHost: h\r\n\r\n", 200],
    ["GET HTTP://h:9107/healthz?x=1 HTTP/1.1\r\nHost: other\r\n\r\n", 200],
    ["GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", 404], // the path is "/"
    ["GET http://u@h/healthz HTTP/1.1\r\nHost: h\r\n\r\n", 400], // userinfo
    ["GET http:///healthz HTTP/1.1\r\nHost: h\r\n\r\n", 400], // no host
    ["GET ftp://h/healthz HTTP/1.1\r\nHost: h\r\n\r\n", 400],
    // Section 3.2: HTTP/1.1 without Host, or with two, or a bad one, is a 400; 1.0 needs none.
    ["GET /healthz HTTP/1.1\r\n\r\n", 400],
    ["GET /healthz HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400],
    ["GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", 400],
    ["GET /healthz HTTP/1.1\r\nhOsT: [::1]:9107\r\n\r\n", 200],
    ["GET /healthz HTTP/1.0\r\n\r\n", 200],
    // Section 3: method SP request-target SP HTTP-version, nothing more.
    ["GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400],
    ["GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400],
    ["GET /healthz\r\nHost: x\r\n\r\n", 400],
    // Section 2.2: bare LF may end a line (answered at once, not at the
    // deadline); an empty line before the request line is ignored; a bare
    // CR is invalid.
    ["GET /healthz HTTP/1.1\nHost: x\n\n", 200],
    ["GET /healthz HTTP/1.1\r\nHost: x\n\r\n", 200],
    ["\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200],
    ["GET /healthz HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400],
    // Section 5: no space before the colon, no folded line, a name on every line.
    ["GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", 400],
    ["GET /healthz HTTP/1.1\r\nHost: x\r\nX: y\r\n z\r\n\r\n", 400],
    ["GET /healthz HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", 400],
  ];
  const wrong: string[] = [];
  try {
    for (const [request, status] of cases) {
      const { answer, ms } = await rawRequest(echod, request);
      const got = answer.slice(0, answer.indexOf("\r\n")) || "no answer";
      // The deadline is 5 s: an answer that waited for it was not read as complete.
      const prompt = ms < 2_000;
      const body = status !== 200 || answer.endsWith("\r\n\r\nok\n");
      if (!got.startsWith(`HTTP/1.1 ${status} `) || !prompt || !body) {
        wrong.push(`${JSON.stringify(request)}: ${got} after ${Math.round(ms)} ms`);
      }
    }
    assert.deepEqual(wrong, [], `${wrong.length} of ${cases.length} requests answered wrongly`);
  } finally {
    await echod.stop();
  }
});
