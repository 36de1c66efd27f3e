/**
 * The library API (`mod.ts`) in-process, as a Deno test suite would use it:
 * start on port 0, echo over IPv4 and IPv6 loopback, count the bytes, drain
 * on shutdown, and say a port in use with a typed error.
 */

import assert from "node:assert/strict";
import { BindError, OptionsError, PortInUseError, serve } from "../mod.ts";
import { closedByPeer, connect, pattern, readExactly, roundTrip, writeAll } from "./_client.ts";

Deno.test("serve(): echoes over IPv4 and IPv6 loopback, counts the bytes, and stops", async () => {
  const echod = await serve({ hosts: ["::1", "127.0.0.1"], port: 0 });
  assert.deepEqual(echod.addr.map((a) => a.hostname), ["::1", "127.0.0.1"]);
  assert.ok(echod.addr.every((a) => a.port === echod.port && echod.port > 0));
  const data = pattern(100_000);
  for (const host of ["127.0.0.1", "::1"]) {
    const conn = await connect(host, echod.port);
    const [, back] = await Promise.all([writeAll(conn, data), readExactly(conn, data.length)]);
    assert.deepEqual(back, data, `echo over ${host}`);
    conn.close();
  }
  await echod.shutdown();
  await echod.finished;
  const stats = echod.stats();
  assert.equal(stats.accepted, 2);
  assert.equal(stats.active, 0);
  assert.equal(stats.bytesIn, 2 * data.length);
  assert.equal(stats.bytesOut, 2 * data.length);
  await assert.rejects(connect("127.0.0.1", echod.port), Deno.errors.ConnectionRefused);
});

Deno.test("serve(): shutdown stops accepting, lets an open connection finish, then resolves", async () => {
  const echod = await serve({ hosts: ["127.0.0.1"], port: 0 });
  const conn = await connect("127.0.0.1", echod.port);
  assert.equal(await roundTrip(conn, "before"), "before");
  let stopped = false;
  const stopping = echod.shutdown({ drainTimeout: 30_000 }).then(() => stopped = true);
  // Still served while draining, but no one new gets in.
  assert.equal(await roundTrip(conn, "during"), "during");
  await assert.rejects(connect("127.0.0.1", echod.port), Deno.errors.ConnectionRefused);
  assert.equal(stopped, false);
  conn.close();
  await stopping;
  assert.deepEqual(
    { active: echod.stats().active, drainCut: echod.stats().drainCut },
    { active: 0, drainCut: 0 },
  );
});

Deno.test("serve(): a second shutdown with drainTimeout 0 closes what is still open", async () => {
  const echod = await serve({ hosts: ["127.0.0.1"], port: 0 });
  const conn = await connect("127.0.0.1", echod.port);
  assert.equal(await roundTrip(conn, "x"), "x");
  const first = echod.shutdown({ drainTimeout: 60_000 });
  await echod.shutdown({ drainTimeout: 0 });
  await first;
  assert.equal(await closedByPeer(conn), true);
  conn.close();
});

Deno.test("serve(): a port in use rejects with PortInUseError, naming the port and address", async () => {
  await using first = await serve({ hosts: ["127.0.0.1"], port: 0 });
  const error = await serve({ hosts: ["127.0.0.1"], port: first.port }).then(
    () => assert.fail("the second server bound a port in use"),
    (error: unknown) => error,
  );
  assert.ok(error instanceof PortInUseError && error instanceof BindError);
  assert.equal(error.port, first.port);
  assert.equal(error.address, `127.0.0.1:${first.port}`);
  assert.equal(error.message, `port ${first.port} is already in use (127.0.0.1:${first.port})`);
  assert.ok(error.cause instanceof Deno.errors.AddrInUse);
});

Deno.test("serve(): a greeting of two lines rejects with OptionsError", async () => {
  const error = await serve({ hosts: ["127.0.0.1"], port: 0, greeting: "a\nb" }).catch((e) => e);
  assert.ok(error instanceof OptionsError);
  assert.deepEqual([error.option, error.reason], ["greeting", "must be one line"]);
});

Deno.test("serve({ fault }): the connection misbehaves as told; a bad profile is an OptionsError", async () => {
  await using echod = await serve({ port: 0, hosts: ["127.0.0.1"], fault: "close-after=5" });
  const conn = await connect("127.0.0.1", echod.port);
  await writeAll(conn, new TextEncoder().encode("hello, world"));
  assert.equal(new TextDecoder().decode(await readExactly(conn, 5)), "hello");
  assert.ok(await closedByPeer(conn), "closed after exactly 5 bytes");
  conn.close();
  for (const fault of ["latency=fast", "drop=0.5"]) {
    await assert.rejects(
      serve({ port: 0, hosts: ["127.0.0.1"], fault }),
      (error: unknown) => error instanceof OptionsError && error.option === "fault",
      fault,
    );
  }
});
