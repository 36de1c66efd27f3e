/**
 * `serve --workers N`: several threads on one port (SO_REUSEPORT, Linux)
 * with limits that hold across all of them. The Windows lane leaves this
 * folder out: Windows has no SO_REUSEPORT.
 */

import assert from "node:assert/strict";
import {
  closedByPeer,
  closeQuietly,
  connect,
  pattern,
  readExactly,
  roundTrip,
  writeAll,
} from "../_client.ts";
import { linuxOnly, startEchod } from "../_echod.ts";

const PERMISSIONS = ["--allow-net", "--allow-read"];

Deno.test({
  name: "--workers 2 echoes on IPv4 and IPv6 and sums the workers' totals",
  ignore: linuxOnly("the --workers test", "SO_REUSEPORT load balancing"),
  async fn() {
    const echod = await startEchod(["--workers", "2"], { permissions: PERMISSIONS });
    try {
      assert.equal(echod.ready?.workers, 2);
      await Promise.all(Array.from({ length: 40 }, async (_, i) => {
        const conn = await connect(i % 2 ? "::1" : "127.0.0.1", echod.port);
        const data = pattern(10_000, i + 1);
        const echoed = readExactly(conn, data.length);
        await writeAll(conn, data);
        assert.deepEqual(await echoed, data);
        conn.close();
      }));
    } finally {
      assert.equal((await echod.stop()).code, 0);
    }
    const stopped = await echod.waitForMessage("stopped");
    assert.equal(stopped.accepted, 40);
    assert.equal(stopped.bytesIn, 400_000);
    assert.equal(stopped.bytesOut, 400_000);
  },
});

Deno.test({
  name: "--workers 2: --max-conns and --max-conns-per-ip hold across workers",
  ignore: linuxOnly("the --workers limits test", "SO_REUSEPORT load balancing"),
  async fn() {
    const echod = await startEchod(
      ["--workers", "2", "--max-conns", "6", "--max-conns-per-ip", "4", "--log-level", "debug"],
      { permissions: PERMISSIONS },
    );
    const open: Deno.Conn[] = [];
    try {
      // Four from 127.0.0.1 fill its allowance, whichever worker takes each.
      for (let i = 0; i < 4; i++) {
        const conn = await connect("127.0.0.1", echod.port);
        assert.equal(await roundTrip(conn, `v4 ${i}`), `v4 ${i}`);
        open.push(conn);
      }
      for (let i = 0; i < 3; i++) {
        const extra = await connect("127.0.0.1", echod.port);
        assert.ok(await closedByPeer(extra), "a fifth connection from 127.0.0.1 was admitted");
        extra.close();
      }
      // Two from ::1 reach the total of six; the seventh is refused.
      for (let i = 0; i < 2; i++) {
        const conn = await connect("::1", echod.port);
        assert.equal(await roundTrip(conn, `v6 ${i}`), `v6 ${i}`);
        open.push(conn);
      }
      const seventh = await connect("::1", echod.port);
      assert.ok(await closedByPeer(seventh), "a seventh connection was admitted");
      seventh.close();
    } finally {
      open.forEach(closeQuietly);
      await echod.stop();
    }
    const stopped = await echod.waitForMessage("stopped");
    assert.equal(stopped.refusedMaxConnsPerIp, 3);
    assert.equal(stopped.refusedMaxConns, 1);
    assert.equal(stopped.accepted, 10);
  },
});
