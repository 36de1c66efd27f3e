/**
 * The echo itself, through a spawned `deno run --allow-net main.ts`: dual
 * stack, exactness at size, half-close, and bounded memory under a peer
 * that never reads.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  closeQuietly,
  connect,
  pattern,
  readExactly,
  readToEnd,
  roundTrip,
  writeAll,
} from "./_client.ts";
import { DUAL_STACK, memoryUnreadable, startEchod } from "./_echod.ts";
import { untilStalled } from "./_poll.ts";

Deno.test("one server answers on both 127.0.0.1 and ::1 by default", async () => {
  const echod = await startEchod();
  try {
    if (DUAL_STACK) {
      assert.equal(echod.ready?.addresses, `[::]:${echod.port}`);
      assert.equal(echod.ready?.mode, "dual-stack");
      assert.equal(
        echod.ready?.message,
        `echod ${echod.ready?.version} listening on [::]:${echod.port} (IPv4 too, through the dual-stack IPv6 socket)`,
      );
    } else {
      assert.equal(echod.ready?.addresses, `[::]:${echod.port}, 0.0.0.0:${echod.port}`);
      assert.equal(echod.ready?.mode, "two-listeners");
    }
    for (const host of ["127.0.0.1", "::1"]) {
      const conn = await connect(host, echod.port);
      assert.equal(
        await roundTrip(conn, `hello over ${host}\n`),
        `hello over ${host}\n`,
      );
      conn.close();
    }
  } finally {
    assert.equal((await echod.stop()).code, 0);
  }
});

Deno.test("--host listens on exactly the given addresses", async () => {
  const echod = await startEchod(["--host", "127.0.0.1"]);
  try {
    assert.equal(echod.ready?.mode, "explicit");
    assert.equal(echod.ready?.addresses, `127.0.0.1:${echod.port}`);
    const v4 = await connect("127.0.0.1", echod.port);
    assert.equal(await roundTrip(v4, "v4"), "v4");
    v4.close();
    await assert.rejects(
      connect("::1", echod.port),
      Deno.errors.ConnectionRefused,
    );
  } finally {
    await echod.stop();
  }
});

Deno.test("two --host addresses share the port picked for --port 0", async () => {
  const echod = await startEchod(["--host", "::1", "--host", "127.0.0.1"]);
  try {
    assert.equal(
      echod.ready?.addresses,
      `[::1]:${echod.port}, 127.0.0.1:${echod.port}`,
    );
    for (const host of ["::1", "127.0.0.1"]) {
      const conn = await connect(host, echod.port);
      assert.equal(await roundTrip(conn, host), host);
      conn.close();
    }
  } finally {
    await echod.stop();
  }
});

Deno.test("64 MiB in random chunks comes back byte-exact (SHA-256)", async () => {
  const echod = await startEchod();
  const total = 64 * 1024 * 1024;
  const data = pattern(total, 7);
  const conn = await connect("127.0.0.1", echod.port);
  try {
    const sent = createHash("sha256");
    const received = createHash("sha256");
    const random = sizes(12345);
    const writer = (async () => {
      for (let at = 0; at < total;) {
        const size = Math.min(random(200_000), total - at);
        const chunk = data.subarray(at, at + size);
        sent.update(chunk);
        await writeAll(conn, chunk);
        at += size;
      }
      await conn.closeWrite();
    })();
    let got = 0;
    for (;;) {
      const buf = new Uint8Array(random(150_000));
      const n = await conn.read(buf);
      if (n === null) break;
      received.update(buf.subarray(0, n));
      got += n;
    }
    await writer;
    assert.equal(got, total);
    assert.equal(received.digest("hex"), sent.digest("hex"));
  } finally {
    closeQuietly(conn);
    await echod.stop();
  }
});

Deno.test("after the peer half-closes, every byte is echoed and then echod closes", async () => {
  const echod = await startEchod();
  try {
    const data = pattern(3 * 1024 * 1024 + 17, 3);
    const conn = await connect("::1", echod.port);
    // Write everything and shut down writing before reading a byte: echod
    // must still deliver all of it, then close its side.
    const reader = readToEnd(conn);
    await writeAll(conn, data);
    await conn.closeWrite();
    const echoed = await reader;
    conn.close();
    assert.equal(echoed.length, data.length);
    assert.deepEqual(echoed, data);
  } finally {
    await echod.stop();
  }
});

Deno.test({
  name: "a peer that writes 256 MiB but does not read cannot grow echod's memory",
  ignore: memoryUnreadable("the 256 MiB backpressure test"),
}, async () => {
  const echod = await startEchod();
  const MiB = 1024 * 1024;
  const chunks = 256;
  const conn = await connect("127.0.0.1", echod.port);
  try {
    const baseline = await echod.rss();
    let written = 0;
    const writer = (async () => {
      for (let i = 0; i < chunks; i++) {
        await writeAll(conn, pattern(MiB, i + 1));
        written += MiB;
      }
      await conn.closeWrite();
    })();
    // Wait until the writer stalls: the kernel buffers are full and echod
    // has stopped reading. Progress is sampled, because a stall is the
    // absence of an event.
    await untilStalled(() => written, {
      what: "the writer to stall",
      timeoutMs: 30_000,
      intervalMs: 500,
    });
    const rss = await echod.rss();
    console.log(
      `stalled after ${written} bytes; echod RSS ${baseline} -> ${rss}`,
    );
    assert.ok(
      written < chunks * MiB,
      `writer never stalled (${written} bytes written)`,
    );
    // echod holds at most one 64 KiB buffer for this peer; the bound leaves
    // room for V8's own noise.
    const growth = rss - baseline;
    assert.ok(
      growth < 32 * MiB,
      `echod RSS grew by ${(growth / MiB).toFixed(1)} MiB while stalled`,
    );
    // Now read: everything comes back, in order, and the writer finishes.
    let got = 0;
    const buf = new Uint8Array(MiB);
    let expected = pattern(MiB, 1);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      for (let i = 0; i < n; i++) {
        const at = (got + i) % MiB;
        if (at === 0 && got + i > 0) {
          expected = pattern(MiB, (got + i) / MiB + 1);
        }
        if (buf[i] !== expected[at]) {
          throw new Error(`mismatch at byte ${got + i}`);
        }
      }
      got += n;
    }
    await writer;
    assert.equal(got, chunks * MiB);
  } finally {
    closeQuietly(conn);
    await echod.stop();
  }
});

Deno.test("many concurrent clients are each echoed their own bytes", async () => {
  const echod = await startEchod();
  try {
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const conn = await connect(i % 2 ? "::1" : "127.0.0.1", echod.port);
        const data = pattern(100_000 + i, i + 100);
        const reading = readExactly(conn, data.length);
        await writeAll(conn, data);
        assert.deepEqual(await reading, data);
        conn.close();
      }),
    );
  } finally {
    await echod.stop();
  }
});

/** A seeded generator of sizes from 1 to `max`, for reproducible chunking. */
function sizes(seed: number): (max: number) => number {
  return function next(max: number): number {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return 1 + (seed % max);
  };
}
