/**
 * The metrics endpoint under attack: silent, partial and trickling
 * requests, floods, and descriptor exhaustion. echod must never exit, must
 * close abusive connections at the request deadline, and must answer a real
 * scrape throughout and afterwards.
 */

import assert from "node:assert/strict";
import { closeQuietly, connect, roundTrip, writeAll } from "../_client.ts";
import { type Echod, linuxOnly, startEchod } from "../_echod.ts";
import { metricsPort, rawRequest } from "../_metrics.ts";

const text = (s: string) => new TextEncoder().encode(s);

async function healthz(echod: Echod): Promise<string> {
  // Bounded: under descriptor exhaustion the request waits in the backlog.
  const response = await fetch(`http://${echod.ready!.metricsAddress}/healthz`, {
    signal: AbortSignal.timeout(2_000),
  });
  return `${response.status} ${await response.text()}`;
}

/** Resolves with ms until the peer closed `conn`; rejects after `limitMs`. */
async function closedAfter(conn: Deno.Conn, limitMs: number): Promise<number> {
  const start = performance.now();
  const timer = setTimeout(() => closeQuietly(conn), limitMs);
  const buf = new Uint8Array(4096);
  try {
    for (;;) {
      if ((await conn.read(buf)) === null) return performance.now() - start;
    }
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionReset) return performance.now() - start;
    throw new Error(`still open after ${limitMs} ms`);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("metrics: silent, partial-line and one-header-a-second clients are closed at the deadline; scrapes still answered", async () => {
  const echod = await startEchod(["--metrics", "127.0.0.1:0"]);
  const port = metricsPort(echod);
  try {
    const silent = await Promise.all(Array.from({ length: 10 }, () => connect("127.0.0.1", port)));
    const partial = await Promise.all(Array.from({ length: 3 }, () => connect("127.0.0.1", port)));
    for (const conn of partial) await writeAll(conn, text("GET /metr"));
    const trickle = await connect("127.0.0.1", port);
    await writeAll(trickle, text("GET /metrics HTTP/1.1\r\n"));
    const trickling = setInterval(() => {
      trickle.write(text("X-A: b\r\n")).catch(() => clearInterval(trickling));
    }, 1_000);
    // A real scrape while they wait.
    assert.equal(await healthz(echod), "200 ok\n");
    const times = await Promise.all(
      [...silent, ...partial, trickle].map((c) => closedAfter(c, 9_000)),
    );
    clearInterval(trickling);
    assert.ok(times.every((ms) => ms < 7_000), `closed after ${times.map(Math.round)} ms`);
  } finally {
    await echod.stop();
  }
});

Deno.test("metrics: 500 silent connections cannot keep a scrape out (newcomers displace the oldest)", async () => {
  const echod = await startEchod(["--metrics", "127.0.0.1:0"]);
  const port = metricsPort(echod);
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 500; i += 100) {
      conns.push(
        ...await Promise.all(Array.from({ length: 100 }, () => connect("127.0.0.1", port))),
      );
    }
    assert.equal(await healthz(echod), "200 ok\n");
    const text = await (await fetch(`http://${echod.ready!.metricsAddress}/metrics`)).text();
    assert.match(text, /^echod_connections_active 0$/m);
  } finally {
    conns.forEach(closeQuietly);
    await echod.stop();
  }
});

Deno.test("metrics: bad requests get one status line each, never a crash", async () => {
  const echod = await startEchod(["--metrics", "127.0.0.1:0"]);
  const cases: [string, string][] = [
    // HTTP/1.1 requires Host (RFC 9112 section 3.2): each request has one, so
    // that the status tells what the case is about.
    ["POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 "],
    ["GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 "],
    ["garbage\r\n\r\n", "HTTP/1.1 400 "],
    ["GET metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 "],
    [`GET /metrics HTTP/1.1\r\n${"X: y\r\n".repeat(2000)}\r\n`, "HTTP/1.1 431 "],
    ["HEAD /healthz HTTP/1.0\r\n\r\n", "HTTP/1.1 200 "],
  ];
  try {
    for (const [request, status] of cases) {
      const { answer } = await rawRequest(echod, request);
      assert.ok(
        answer.startsWith(status),
        `${JSON.stringify(request.slice(0, 30))}: ${answer.slice(0, 40)}`,
      );
    }
    assert.equal(await healthz(echod), "200 ok\n");
  } finally {
    await echod.stop();
  }
});

for (
  const [name, attack] of [
    ["300 echo clients", "echo"],
    ["230 partial HTTP requests", "partial"],
  ] as const
) {
  Deno.test({
    name:
      `metrics under descriptor exhaustion (${name}, ulimit -n 64): echod stays up, answers again`,
    ignore: linuxOnly(`the metrics exhaustion test (${name})`, "ulimit"),
    async fn() {
      const echod = await startEchod(["--metrics", "127.0.0.1:0"], {
        shellPrefix: "ulimit -n 64",
      });
      const port = attack === "echo" ? echod.port : metricsPort(echod);
      const held: Deno.Conn[] = [];
      try {
        for (let i = 0; i < (attack === "echo" ? 300 : 230); i++) {
          const conn = await connect("127.0.0.1", port);
          held.push(conn);
          if (attack === "partial") await writeAll(conn, text("GET /healthz HTTP/1.1\r\nHost:"));
        }
        // A scrape now may fail (no descriptor to accept it with), but must not kill echod.
        await healthz(echod).catch(() => "refused");
        held.splice(0).forEach(closeQuietly);
        let answer = "";
        for (let i = 0; i < 40 && answer !== "200 ok\n"; i++) {
          answer = await healthz(echod).catch(() => "");
        }
        assert.equal(answer, "200 ok\n");
        const conn = await connect("127.0.0.1", echod.port);
        assert.equal(await roundTrip(conn, "still here"), "still here");
        conn.close();
      } finally {
        held.forEach(closeQuietly);
      }
      assert.equal((await echod.stop()).code, 0);
    },
  });
}
