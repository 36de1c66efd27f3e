/**
 * `echod bench` against servers that misbehave on purpose, written here
 * with Deno's own API (node:net for a true reset): it must tell a cut at
 * the expected byte (a pass) from a cut at the wrong byte, the wrong kind
 * of cut and a stall (errors, by kind), show injected latency as it is,
 * and end on time whatever the server does.
 */

import assert from "node:assert/strict";
import * as net from "node:net";
import type { BenchReport } from "../lib/bench/runner.ts";
import { runEchod, skipUnless, startEchod } from "./_echod.ts";

/** A misbehaving echo server in this process. */
interface Misbehaving {
  port: number;
  close(): Promise<void>;
}

/** How one connection is served; `closing` resolves when the server closes. */
type Serve = (conn: Deno.Conn, closing: Promise<void>) => Promise<void>;

/** A Deno server whose connections each run `serve`; `close` ends the listener and them. */
function server(serve: Serve): Misbehaving {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const served = new Set<Promise<void>>();
  let closed: () => void = () => {};
  const closing = new Promise<void>((resolve) => (closed = resolve));
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      const one = serve(conn, closing).catch(() => {}).finally(() => {
        conns.delete(conn);
        try {
          conn.close();
        } catch {
          // Closed by `serve`.
        }
      });
      served.add(one);
      one.finally(() => served.delete(one));
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      closed();
      listener.close();
      for (const conn of conns) conn.close();
      await accepting;
      await Promise.all(served);
    },
  };
}

/**
 * Echoes the first `limit` bytes (Infinity: all), each chunk `delayMs`
 * after it arrived, then closes. It reads whole chunks, so nothing sent
 * is left unread at the close: a clean close (FIN), not a reset.
 */
function echoing(limit: number, delayMs = 0): Serve {
  return async (conn) => {
    const buf = new Uint8Array(65_536);
    for (let total = 0; total < limit;) {
      const n = await conn.read(buf);
      if (n === null) return;
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const echo = Math.min(n, limit - total);
      for (let w = 0; w < echo;) w += await conn.write(buf.subarray(w, echo));
      total += echo;
    }
    conn.close();
  };
}

/** Echoes `limit` bytes, then stops reading for good (the bench's writes back up). */
function stalling(limit: number): Serve {
  return async (conn, closing) => {
    const buf = new Uint8Array(4_096);
    for (let total = 0; total < limit;) {
      const n = await conn.read(buf.subarray(0, Math.min(buf.length, limit - total)));
      if (n === null) return;
      for (let w = 0; w < n;) w += await conn.write(buf.subarray(w, n));
      total += n;
    }
    await closing;
  };
}

/** A node:net echo server that resets (RST) each connection after echoing `limit` bytes. */
async function resetting(limit: number): Promise<Misbehaving> {
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    let total = 0;
    socket.on("data", (data: Uint8Array) => {
      const take = data.subarray(0, limit - total);
      total += take.length;
      socket.write(take, () => {
        if (total >= limit && !socket.destroyed) socket.resetAndDestroy();
      });
    });
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
  return {
    port: (tcp.address() as net.AddressInfo).port,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => tcp.close(resolve));
    },
  };
}

/** A node:net server that resets every connection at once (echod's `refuse`). */
async function refusing(): Promise<Misbehaving> {
  const tcp = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.resetAndDestroy();
  });
  await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
  return {
    port: (tcp.address() as net.AddressInfo).port,
    close: () => new Promise((resolve) => tcp.close(() => resolve())),
  };
}

/** Runs `echod bench` against `port` with `args`, returns the exit code and the JSON report. */
async function bench(
  port: number,
  args: string[],
  permissions?: string[],
): Promise<{ code: number; report: BenchReport }> {
  const { code, stdout, stderr } = await runEchod([
    "bench",
    `127.0.0.1:${port}`,
    "--warmup",
    "0",
    "--json",
    ...args,
  ], permissions);
  assert.ok(stdout.startsWith("{"), `no report: ${stderr}`);
  return { code, report: JSON.parse(stdout) };
}

Deno.test("bench --expect-close=1000 passes closes at byte 1000 and reconnects", async () => {
  const s = server(echoing(1_000));
  try {
    const { code, report } = await bench(s.port, ["-c", "4", "-d", "1s", "--expect-close=1000"]);
    assert.equal(code, 0, JSON.stringify(report.errors));
    assert.equal(report.errorCount, 0);
    assert.deepEqual(report.expect, { cut: "close", bytes: 1_000 });
    // Many connections, each exactly 1,000 bytes: 512 + 488, then the close.
    assert.ok(report.cuts.asExpected > 20, `${report.cuts.asExpected} cuts`);
    assert.equal(report.cuts.wrongByte, 0);
    assert.deepEqual(report.cuts.bytesPerConnection, {
      count: report.cuts.asExpected,
      min: 1_000,
      mean: 1_000,
      max: 1_000,
    });
    // Workers' counts add up.
    const spread = await bench(
      s.port,
      ["-c", "4", "-w", "2", "-d", "500ms", "--expect-close=1000"],
      ["--allow-net", "--allow-read"],
    );
    assert.equal(spread.code, 0, JSON.stringify(spread.report.errors));
    assert.ok(spread.report.cuts.asExpected > 4);
    assert.equal(spread.report.cuts.bytesPerConnection.count, spread.report.cuts.asExpected);
    assert.equal(spread.report.cuts.bytesPerConnection.mean, 1_000);
  } finally {
    await s.close();
  }
});

Deno.test("bench --expect-close counts a close at the wrong byte and a missing close as errors", async () => {
  const early = server(echoing(700));
  const clean = await startEchod();
  try {
    for (const mode of ["rr", "stream"]) {
      const { code, report } = await bench(early.port, [
        "-m",
        mode,
        "-c",
        "2",
        "-d",
        "500ms",
        "--expect-close=1000",
      ]);
      assert.equal(code, 1, mode);
      assert.equal(report.cuts.asExpected, 0, mode);
      assert.ok(report.cuts.wrongByte > 0, mode);
      assert.equal(report.errors["wrong-cut"], report.cuts.wrongByte, mode);
      assert.equal(report.cuts.bytesPerConnection.max, 700, mode);
      assert.equal(report.errorCount, report.errors["wrong-cut"], JSON.stringify(report.errors));
    }
    // Without BYTES any close passes, with every byte before it exact.
    const anywhere = await bench(early.port, ["-c", "2", "-d", "500ms", "--expect-close"]);
    assert.equal(anywhere.code, 0, JSON.stringify(anywhere.report.errors));
    assert.ok(anywhere.report.cuts.asExpected > 0);
    assert.equal(anywhere.report.cuts.bytesPerConnection.min, 700);
    // A clean echo server never closes: at the expected byte it only waits.
    const missing = await bench(clean.port, [
      "-c",
      "2",
      "-d",
      "300ms",
      "--expect-close=1000",
      "--stall-timeout",
      "300ms",
    ]);
    assert.equal(missing.code, 1);
    assert.ok(missing.report.errors["wrong-cut"] > 0, JSON.stringify(missing.report.errors));
    assert.equal(missing.report.cuts.bytesPerConnection.min, 1_000);
    // Without BYTES nothing is wrong but the close never comes: not a pass either.
    const never = await runEchod([
      "bench",
      `127.0.0.1:${clean.port}`,
      "-c",
      "2",
      "-d",
      "300ms",
      "--warmup",
      "0",
      "--expect-close",
    ]);
    assert.equal(never.code, 1);
    assert.equal(
      never.stderr,
      "echod: no connection was cut as --expect-close expects: is the fault on this port?\n",
    );
    assert.match(never.stdout, /cuts {8}0 closed as expected, 0 at the wrong byte, 0 stalled/);
    assert.match(never.stdout, /no errors/);
  } finally {
    await early.close();
    await clean.stop();
  }
});

Deno.test({
  name: "bench --expect-reset=1000 passes resets at byte 1000; a close or reset where the other " +
    "was expected is an error",
  // Windows drops the data a socket has received when a reset arrives, so
  // the bytes echoed just before it cannot all be read there.
  ignore: skipUnless(
    Deno.build.os !== "windows",
    "the reset test",
    "Windows discards received data when a reset arrives",
  ),
  async fn() {
    const resets = await resetting(1_000);
    const closes = server(echoing(1_000));
    const refuses = await refusing();
    try {
      const pass = await bench(resets.port, ["-c", "4", "-d", "1s", "--expect-reset=1000"]);
      assert.equal(pass.code, 0, JSON.stringify(pass.report.errors));
      assert.ok(pass.report.cuts.asExpected > 20, `${pass.report.cuts.asExpected} cuts`);
      assert.equal(pass.report.cuts.bytesPerConnection.min, 1_000);
      assert.equal(pass.report.cuts.bytesPerConnection.max, 1_000);

      const closeExpected = await bench(resets.port, ["-c", "2", "-d", "300ms", "--expect-close"]);
      assert.equal(closeExpected.code, 1);
      assert.ok(closeExpected.report.errors.reset > 0);
      assert.equal(closeExpected.report.cuts.asExpected, 0);

      const resetExpected = await bench(closes.port, ["-c", "2", "-d", "300ms", "--expect-reset"]);
      assert.equal(resetExpected.code, 1);
      assert.ok(resetExpected.report.errors["early-close"] > 0);
      assert.equal(resetExpected.report.cuts.asExpected, 0);

      // Reset at once, before any byte: --expect-reset=0, in connect mode too.
      for (const mode of ["rr", "connect"]) {
        const atOnce = await bench(refuses.port, [
          "-m",
          mode,
          "-c",
          "2",
          "-d",
          "300ms",
          "--expect-reset=0",
        ]);
        assert.equal(atOnce.code, 0, `${mode}: ${JSON.stringify(atOnce.report.errors)}`);
        assert.ok(atOnce.report.cuts.asExpected > 0, mode);
        assert.equal(atOnce.report.cuts.bytesPerConnection.max, 0, mode);
      }
    } finally {
      await resets.close();
      await closes.close();
      await refuses.close();
    }
  },
});

Deno.test("bench rr against a server adding 100 ms per echo reads p50 of 100-115 ms", async () => {
  // A greeting first, at once: the first round trip after it is timed like every other.
  const s = server(async (conn, closing) => {
    await conn.write(new TextEncoder().encode("hello from a slow echo\r\n"));
    await echoing(Infinity, 100)(conn, closing);
  });
  try {
    const { code, report } = await bench(s.port, ["-c", "4", "-d", "2s", "--expect-greeting"]);
    assert.equal(code, 0, JSON.stringify(report.errors));
    assert.ok(report.latency.count >= 40, `${report.latency.count} round trips`);
    const { p50, max } = report.latencyMs;
    assert.ok(p50 >= 100 && p50 <= 115, `p50 ${p50} ms`);
    // No round trip, the first on each connection included, is counted twice over.
    assert.ok(max < 200, `max ${max} ms`);
    assert.equal(report.latencyMs.p50, report.latency.p50 / 1_000);
  } finally {
    await s.close();
  }
});

Deno.test("bench ends a stalled connection after --stall-timeout and counts it", async () => {
  const s = server(stalling(65_536));
  try {
    for (const mode of ["rr", "stream"]) {
      const began = performance.now();
      const stalled = await bench(s.port, [
        "-m",
        mode,
        "-c",
        "2",
        "-d",
        "300ms",
        "--stall-timeout",
        "500ms",
      ]);
      // A server that stops reading cannot hold the bench past duration + stall timeout.
      assert.ok(performance.now() - began < 10_000);
      assert.equal(stalled.code, 1, mode);
      assert.ok(stalled.report.errors.stall > 0, JSON.stringify(stalled.report.errors));
      assert.equal(stalled.report.cuts.stalled, stalled.report.errors.stall);

      const expected = await bench(s.port, [
        "-m",
        mode,
        "-c",
        "2",
        "-d",
        "300ms",
        "--stall-timeout",
        "500ms",
        "--expect-stall=64KiB",
        // More in flight than the two socket buffers hold, so the writes block.
        ...(mode === "stream" ? ["--window", "16MiB"] : []),
      ]);
      assert.equal(expected.code, 0, `${mode}: ${JSON.stringify(expected.report.errors)}`);
      assert.ok(expected.report.cuts.asExpected > 0);
      assert.equal(expected.report.cuts.bytesPerConnection.min, 65_536);
      if (mode === "stream") {
        // 16 MiB in flight against a server that reads no more: the writes block.
        assert.ok(expected.report.cuts.stalledWhileWriting > 0, mode);
      }
    }
  } finally {
    await s.close();
  }
});

Deno.test("bench stream reports bytes per second per connection", async () => {
  const clean = await startEchod();
  try {
    const { code, report } = await bench(clean.port, ["-m", "stream", "-c", "2", "-d", "500ms"]);
    assert.equal(code, 0);
    const perConnection = report.verifiedBytes / (report.elapsedMs / 1_000) / 2;
    assert.ok(report.bytesPerSecondPerConnection > 0);
    // elapsedMs is rounded to the millisecond in the report.
    assert.ok(Math.abs(report.bytesPerSecondPerConnection / perConnection - 1) < 0.01);
  } finally {
    await clean.stop();
  }
});

Deno.test("bench fault flags: one-line usage errors", async () => {
  for (
    const [args, message] of [
      [
        ["--expect-close=lots"],
        "--expect-close=lots: BYTES is not a size: use e.g. --expect-close=1000, " +
        "--expect-close=64KiB, or no value",
      ],
      [["--expect-reset="], "--expect-reset= needs a value after = (--expect-reset=BYTES)"],
      [
        ["--expect-close", "--expect-reset"],
        "--expect-close and --expect-reset exclude each other: give one",
      ],
      [
        ["--expect-stall", "-m", "hold"],
        "--expect-stall does not apply to --mode hold: use rr, stream or connect",
      ],
      [["--stall-timeout", "0"], "--stall-timeout must be more than 0 (1ms to 596h)"],
      [
        ["--stall-timeout", "soon"],
        "--stall-timeout 'soon' is not a duration: use e.g. 500ms, 30s, 10m, 1h, or 0",
      ],
    ] as [string[], string][]
  ) {
    const { code, stderr } = await runEchod(["bench", "127.0.0.1:1", ...args]);
    assert.equal(code, 2, args.join(" "));
    assert.equal(stderr, `echod: ${message}\n`);
  }
});

Deno.test({
  name:
    "bench judges echod's own reset-after port: --expect-reset passes at 1 MiB, --expect-close fails",
  ignore: skipUnless(
    Deno.build.os !== "windows",
    "the echod reset bench test",
    "Windows drops received data when a reset arrives, so the bytes before it cannot all be counted",
  ),
}, async () => {
  const echod = await startEchod(["--fault", "reset-after=1MiB"]);
  try {
    const pass = await bench(echod.port, ["-c", "2", "-d", "1s", "--expect-reset=1MiB"]);
    assert.equal(pass.code, 0, JSON.stringify(pass.report.errors));
    assert.ok(pass.report.cuts.asExpected > 0);
    assert.equal(pass.report.cuts.bytesPerConnection.min, 1_048_576);
    assert.equal(pass.report.cuts.bytesPerConnection.max, 1_048_576);
    // echod's reset is a FIN with an RST right behind it: not a clean close.
    const fail = await bench(echod.port, ["-c", "2", "-d", "1s", "--expect-close=1MiB"]);
    assert.equal(fail.code, 1);
    assert.ok(fail.report.errors.reset > 0, JSON.stringify(fail.report.errors));
    assert.equal(fail.report.cuts.asExpected, 0);
  } finally {
    await echod.stop();
  }
});

Deno.test("bench judges echod's own close-after port: --expect-close=1000 passes, --expect-reset fails", async () => {
  const echod = await startEchod(["--fault", "close-after=1000"]);
  try {
    const pass = await bench(echod.port, ["-c", "2", "-d", "1s", "--expect-close=1000"]);
    assert.equal(pass.code, 0, JSON.stringify(pass.report.errors));
    assert.ok(pass.report.cuts.asExpected > 0);
    assert.equal(pass.report.cuts.bytesPerConnection.max, 1_000);
    const fail = await bench(echod.port, ["-c", "2", "-d", "1s", "--expect-reset=1000"]);
    assert.equal(fail.code, 1);
    assert.ok(fail.report.errors["early-close"] > 0, JSON.stringify(fail.report.errors));
  } finally {
    await echod.stop();
  }
});

Deno.test("bench's latency report shows echod's injected latency=100ms: p50 within [100, 115] ms", async () => {
  const echod = await startEchod(["--fault", "latency=100ms"]);
  try {
    const { code, report } = await bench(echod.port, ["-c", "4", "-d", "2s"]);
    assert.equal(code, 0, JSON.stringify(report.errors));
    const p50 = report.latencyMs.p50;
    assert.ok(p50 >= 100 && p50 <= 115, `p50 ${p50} ms`);
  } finally {
    await echod.stop();
  }
});
