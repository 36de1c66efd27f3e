/**
 * Descriptor exhaustion with every feature on at once: plain TCP, TLS on
 * its own port, UDP, metrics and the PROXY protocol. echod must never exit,
 * and every listener must serve again once descriptors free up.
 */

import assert from "node:assert/strict";
import { closeQuietly, connect, roundTrip, writeAll } from "../../_client.ts";
import { linuxOnly } from "../../_echod.ts";
import { connectTls, startTlsEchod } from "../../_tls.ts";
import { poll } from "../../_poll.ts";

Deno.test({
  name:
    "every feature on, ulimit -n 128, 600 connections across the listeners: no exit, all serve again",
  ignore: linuxOnly("the everything-at-once test", "ulimit"),
  async fn() {
    const echod = await startTlsEchod([
      "--tls-port",
      "0",
      "--udp",
      "--metrics",
      "127.0.0.1:0",
      "--proxy-protocol",
      "--trusted-proxy",
      "127.0.0.1",
      "--max-conns-per-ip",
      "0",
    ], { shellPrefix: "ulimit -n 128" });
    const tlsPort = echod.ready!.tlsPort as number;
    const metricsPort = Number(String(echod.ready!.metricsAddress).split(":").at(-1));
    const held: Deno.Conn[] = [];
    try {
      // Far past 128 descriptors, spread over every TCP listener; the kernel
      // completes handshakes into the backlog whether echod can accept or not.
      // (To the echo port from ::1: from 127.0.0.1 they would be proxy connections.)
      for (const [port, count] of [[echod.port, 300], [tlsPort, 200], [metricsPort, 100]]) {
        for (let i = 0; i < count; i++) {
          held.push(await connect(port === metricsPort ? "127.0.0.1" : "::1", port));
        }
      }
      await echod.waitForMessage("accept failed");
      held.splice(0).forEach(closeQuietly);

      // Everything serves again (retried while echod drains its backlogs).
      const retry = (what: string, attempt: () => Promise<unknown>): Promise<true> =>
        poll(async () => {
          await attempt();
          return true as const;
        }, { what: `${what} to recover`, timeoutMs: 5_000, intervalMs: 100 });
      await retry("plain TCP", async () => {
        const conn = await connect("::1", echod.port);
        try {
          assert.equal(await roundTrip(conn, "plain"), "plain");
        } finally {
          conn.close();
        }
      });
      await retry("TLS", async () => {
        const conn = await connectTls("::1", tlsPort);
        try {
          assert.equal(await roundTrip(conn, "tls"), "tls");
        } finally {
          conn.close();
        }
      });
      await retry("metrics", async () => {
        const response = await fetch(`http://${echod.ready!.metricsAddress}/healthz`, {
          signal: AbortSignal.timeout(1_000),
        });
        assert.equal(await response.text(), "ok\n");
      });
      await retry("PROXY", async () => {
        const conn = await Deno.connect({ hostname: "::1", port: echod.port });
        // From ::1, not the trusted 127.0.0.1: plain echo of the header text.
        try {
          assert.equal(await roundTrip(conn, "PROXY UNKNOWN\r\n"), "PROXY UNKNOWN\r\n");
        } finally {
          conn.close();
        }
      });
      const proxied = await retry("PROXY from the trusted address", async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: echod.port });
        await writeAll(conn, new TextEncoder().encode("PROXY TCP4 192.0.2.9 192.0.2.1 9 7\r\n"));
        try {
          assert.equal(await roundTrip(conn, "via proxy"), "via proxy");
        } finally {
          conn.close();
        }
        return true;
      });
      assert.ok(proxied);
      const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
      try {
        await retry("UDP", async () => {
          await socket.send(new Uint8Array([7]), {
            transport: "udp",
            hostname: "127.0.0.1",
            port: echod.port,
          });
          const [data] = await Promise.race([
            socket.receive(),
            new Promise<never>((_, reject) =>
              setTimeout(() => reject(new Error("no answer")), 500)
            ),
          ]);
          assert.deepEqual(data, new Uint8Array([7]));
        });
      } finally {
        socket.close();
      }
    } finally {
      held.forEach(closeQuietly);
    }
    assert.equal((await echod.stop()).code, 0);
  },
});
