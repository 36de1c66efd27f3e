/**
 * Clients that reset mid-transfer, and clients that half-close at once:
 * nothing escapes, nothing leaks, nothing is lost.
 */

import assert from "node:assert/strict";
import { connect, pattern, readToEnd, writeAll } from "../_client.ts";
import { memoryUnreadable, ROOT, skipUnless, startEchod, WINE } from "../_echod.ts";
import { has } from "../_programs.ts";

Deno.test({
  name: "3,000 clients that send and then reset: no error escapes, no leak",
  ignore: memoryUnreadable("the reset test") ||
    skipUnless(
      has("node"),
      "the reset test",
      "its client is a Node script, and node is not installed",
    ) ||
    skipUnless(
      !WINE,
      "the reset test",
      "Wine's accept reports a connection reset in the backlog as 'invalid argument', an accept failure to echod (Windows reports it as a reset)",
    ),
}, async () => {
  const echod = await startEchod(["--stats-interval", "200ms", "--max-conns-per-ip", "0"]);
  try {
    const baseline = await echod.rss();
    const out = await new Deno.Command("node", {
      args: [
        "tests/faults/reset_client.mjs",
        "127.0.0.1",
        String(echod.port),
        "3000",
        "50",
        "65536",
      ],
      cwd: ROOT,
    }).output();
    assert.equal(new TextDecoder().decode(out.stdout).trim(), "done 3000");
    // Back to no connection, and nothing left to accept, as the stats line shows.
    const done = Date.now();
    const quiet = await echod.waitFor((r) =>
      r.message.startsWith("stats:") && Date.parse(r["@timestamp"] as string) > done &&
      r.active === 0 && r.acceptRate === 0
    );
    // Every reset connection was taken, whether before or after its reset. Windows
    // drops a connection reset while it waits in the backlog, unseen: there, no more.
    const taken = (quiet.accepted as number) + (quiet.acceptAborted as number);
    if (Deno.build.os === "windows") assert.ok(taken > 0 && taken <= 3000, `${taken} taken`);
    else assert.equal(taken, 3000);
    const growth = (await echod.rss()) - baseline;
    assert.ok(growth < 32 * 1024 * 1024, `RSS ${(growth / 1048576).toFixed(1)} MiB above baseline`);
    const noisy = echod.records.filter((r) => r.level === "ERROR" || r.level === "WARNING");
    assert.deepEqual(noisy, []);
    assert.deepEqual(echod.otherLines, []);
  } finally {
    assert.equal((await echod.stop()).code, 0);
  }
});

Deno.test("half-close storm: 500 clients shut down writing right after sending; every byte comes back", async () => {
  const echod = await startEchod(["--max-conns-per-ip", "0"]);
  try {
    let seed = 99;
    const sizes = Array.from({ length: 500 }, () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return 1 + (seed % 65_536);
    });
    const results = await Promise.all(sizes.map(async (size, i) => {
      const conn = await connect(i % 2 ? "::1" : "127.0.0.1", echod.port);
      const data = pattern(size, i + 1);
      const echoed = readToEnd(conn);
      await writeAll(conn, data);
      await conn.closeWrite();
      const got = await echoed;
      conn.close();
      return got.length === data.length && got.every((b, j) => b === data[j]);
    }));
    assert.equal(results.filter((ok) => !ok).length, 0);
  } finally {
    await echod.stop();
  }
});
