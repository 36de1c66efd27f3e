/**
 * What an idle connection holds after it sent a large message: its pending
 * read waits on a small buffer whatever came before, and large buffers are
 * lent from a bounded pool. Measured as echod's resident memory.
 */

import assert from "node:assert/strict";
import { closeQuietly, connect, pattern, readExactly, writeAll } from "../_client.ts";
import { memoryUnreadable, startEchod, WINE } from "../_echod.ts";

Deno.test({
  name:
    "2,000 connections that each echoed 64,000 bytes and went idle hold a few KiB each, not their message",
  ignore: memoryUnreadable("the idle-memory test"),
  async fn() {
    const count = 2_000;
    const echod = await startEchod(["--max-conns-per-ip", "0"]);
    const conns: Deno.Conn[] = [];
    try {
      const before = await echod.rss();
      for (let i = 0; i < count; i += 200) {
        conns.push(
          ...await Promise.all(Array.from({ length: 200 }, () => connect("127.0.0.1", echod.port))),
        );
      }
      const fresh = (await echod.rss()) - before;
      const message = pattern(64_000);
      for (let i = 0; i < count; i += 100) {
        await Promise.all(
          conns.slice(i, i + 100).map(async (conn) => {
            await writeAll(conn, message);
            assert.deepEqual(await readExactly(conn, message.length), message);
          }),
        );
      }
      const used = (await echod.rss()) - before;
      const perConn = (used - fresh) / count / 1024;
      // Before the pooled buffers each kept its 64 KiB read buffer: ~97 KiB more per connection.
      console.log(
        `idle after a 64,000-byte echo: ${(used / count / 1024).toFixed(1)} KiB per connection ` +
          `(${(fresh / count / 1024).toFixed(1)} fresh)`,
      );
      assert.ok(perConn < 16, `${perConn.toFixed(1)} KiB more per connection than fresh`);
    } finally {
      conns.forEach(closeQuietly);
      // Clean-up only: under Wine, echod takes about a minute to see 2,000 closes; a kill is now.
      await echod.stop(WINE ? "SIGKILL" : "SIGTERM");
    }
  },
});
