/**
 * Graceful shutdown, logging and permissions of a spawned echod. On
 * Windows the tests ask for the stop with `POST /quitquitquit` instead of a
 * signal (see `SIGNALS` in `_echod.ts`).
 */

import assert from "node:assert/strict";
import { closedByPeer, closeQuietly, connect, roundTrip } from "./_client.ts";
import {
  LINUX,
  type LogRecord,
  postQuit,
  ROOT,
  runEchod,
  SIGNALS,
  skipUnless,
  startEchod,
  STOP_NAME,
  stopFlags,
  waitForLogFile,
} from "./_echod.ts";
import { DENO_FLAGS } from "./_programs.ts";

Deno.test("SIGTERM stops accepting, lets open connections finish, exits 0 with totals", async () => {
  const echod = await startEchod(["--drain-timeout", "1h"]);
  const conn = await connect("127.0.0.1", echod.port);
  assert.equal(await roundTrip(conn, "before"), "before");
  await echod.requestStop();
  await echod.waitForMessage(`received ${STOP_NAME}: no longer accepting`);
  await echod.waitForMessage("draining 1 connections");
  await assert.rejects(
    connect("127.0.0.1", echod.port),
    Deno.errors.ConnectionRefused,
  );
  // The open connection is still served while draining.
  assert.equal(await roundTrip(conn, "during drain"), "during drain");
  conn.close();
  const { code } = await echod.exited();
  assert.equal(code, 0);
  const stopped = await echod.waitForMessage("stopped");
  assert.equal(stopped.accepted, 1);
  assert.equal(stopped.bytesIn, "beforeduring drain".length);
  assert.equal(stopped.bytesOut, "beforeduring drain".length);
});

Deno.test("connections still open at --drain-timeout are closed, exit 0", async () => {
  const echod = await startEchod(["--drain-timeout", "300ms"]);
  const conn = await connect("::1", echod.port);
  try {
    assert.equal(await roundTrip(conn, "hi"), "hi");
    await echod.requestStop();
    assert.ok(await closedByPeer(conn));
    assert.equal((await echod.exited()).code, 0);
    await echod.waitForMessage("closing 1 connections still open");
  } finally {
    closeQuietly(conn);
  }
});

Deno.test("a second SIGINT ends the drain at once", async () => {
  const echod = await startEchod(["--drain-timeout", "1h"]);
  const conn = await connect("127.0.0.1", echod.port);
  try {
    assert.equal(await roundTrip(conn, "hi"), "hi");
    await echod.requestStop("SIGINT");
    await echod.waitForMessage("draining");
    await echod.requestStop("SIGINT");
    assert.equal((await echod.exited()).code, 0);
    assert.ok(await closedByPeer(conn));
  } finally {
    closeQuietly(conn);
  }
});

Deno.test("debug logs each connection with peer, duration and byte counts", async () => {
  const echod = await startEchod(["--log-level", "debug"]);
  const conn = await connect("127.0.0.1", echod.port);
  assert.equal(await roundTrip(conn, "12345"), "12345");
  conn.close();
  const opened = await echod.waitFor((r) => r.message.startsWith("open "));
  const closed = await echod.waitFor((r) => r.message.startsWith("close "));
  await echod.stop();
  assert.equal(opened.level, "DEBUG");
  assert.match(
    String(opened.peer),
    /^127\.0\.0\.1:\d+$|^\[::ffff:127\.0\.0\.1\]:\d+$/,
  );
  assert.equal(closed.peer, opened.peer);
  assert.equal(closed.bytesIn, 5);
  assert.equal(closed.bytesOut, 5);
  assert.equal(closed.reason, "peer-closed");
  assert.equal(typeof closed.durationMs, "number");
});

Deno.test("info level leaves out per-connection records; the stats line comes at --stats-interval", async () => {
  const echod = await startEchod(["--stats-interval", "200ms"]);
  const conn = await connect("::1", echod.port);
  assert.equal(await roundTrip(conn, "abc"), "abc");
  const stats = await echod.waitFor((r) => r.message.startsWith("stats:") && r.bytesIn === 3);
  conn.close();
  await echod.stop();
  assert.equal(stats.level, "INFO");
  assert.equal(stats.active, 1);
  assert.equal(stats.accepted, 1);
  assert.equal(stats.bytesOut, 3);
  for (const key of ["refused", "acceptRate", "inRate", "outRate"]) {
    assert.equal(typeof stats[key], "number", key);
  }
  assert.ok(!echod.records.some((r) => r.level === "DEBUG"));
  assert.deepEqual(echod.otherLines, []);
});

Deno.test("the text format is one readable line per record", async () => {
  // The text format, so not startEchod (JSON); the line is read here.
  const args = ["--port", "0", ...stopFlags([])];
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", ...DENO_FLAGS, "--allow-net", "--no-prompt", "main.ts", ...args],
    cwd: ROOT,
    stderr: "piped",
    stdout: "null",
  });
  const child = command.spawn();
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).values();
  const first = (await lines.next()).value as string;
  if (SIGNALS) child.kill("SIGTERM");
  else await postQuit(first.match(/metrics on http:\/\/([^/]+)\//)![1]);
  for await (const _ of lines) { /* drain */ }
  assert.equal((await child.status).code, 0);
  assert.match(
    first,
    SIGNALS
      ? /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[INF\] echod: echod \d+\.\d+\.\d+ listening on \[::\]:\d+ \(IPv4 too/
      : /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[INF\] echod: echod \d+\.\d+\.\d+ listening on \[::\]:\d+, 0\.0\.0\.0:\d+/,
  );
});

Deno.test("--log-file writes the log there when write permission is given", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/echod.log`;
  try {
    const echod = await startEchod(["--log-file", path], {
      permissions: ["--allow-net", `--allow-write=${path}`],
      waitReady: false,
    });
    // The log goes to the file, so readiness is read from there.
    const listening = (r: LogRecord) => r.message.includes("listening on");
    // The endpoint a Windows test stops echod through is named there.
    echod.ready = (await waitForLogFile(path, listening)).find(listening);
    assert.equal((await echod.stop()).code, 0);
    const records = (await Deno.readTextFile(path)).trim().split("\n").map((
      l,
    ) => JSON.parse(l));
    assert.ok(records.some((r) => r.message.includes("listening on")));
    assert.ok(records.some((r) => r.message.startsWith("stopped")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--log-file without write permission says which flag to add", async () => {
  const { code, stderr } = await runEchod([
    "--port",
    "0",
    "--log-file",
    "/tmp/echod.log",
  ]);
  assert.equal(code, 2);
  assert.equal(
    stderr,
    "echod: --log-file /tmp/echod.log needs write permission: add --allow-write=/tmp/echod.log to the deno command\n",
  );
});

Deno.test("deno run --allow-net --no-prompt: --help and --version work", async () => {
  const help = await runEchod(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage:\n {2}echod \[serve\] \[options\]/);
  assert.match(help.stdout, /--idle-timeout DURATION .*\(default: 5m\)/);
  assert.equal(help.stderr, "");
  const version = await runEchod(["--version"]);
  assert.equal(version.code, 0);
  assert.match(
    version.stdout,
    /^echod \d+\.\d+\.\d+ \(deno \d+\.\d+\.\d+, [\w-]+\)\n$/,
  );
});

Deno.test("without --allow-net echod says so instead of prompting", async () => {
  const { code, stderr } = await runEchod(["--port", "0"], []);
  assert.equal(code, 2);
  assert.equal(
    stderr,
    "echod: echod serve needs network permission: add --allow-net to the deno command\n",
  );
});

for (
  const [name, flags, applies, why] of [
    ["one thread", [], true, ""],
    ["--workers 2", ["--workers", "2"], LINUX, `--workers needs Linux; this is ${Deno.build.os}`],
  ] as const
) {
  Deno.test({
    name: `${name}: bytes cut by the drain are counted, so bytes in = bytes out + cut`,
    ignore: skipUnless(applies, `the drain-cut test (${name})`, why),
  }, async () => {
    const echod = await startEchod([...flags, "--drain-timeout", "1s"], {
      permissions: ["--allow-net", "--allow-read"],
    });
    // Clients that send without reading: once the socket buffers fill, every
    // connection has a chunk read by echod that it cannot write back.
    const conns = await Promise.all(
      Array.from({ length: 4 }, (_, i) => connect(i % 2 ? "::1" : "127.0.0.1", echod.port)),
    );
    for (const conn of conns) assert.equal(await roundTrip(conn, "admitted"), "admitted");
    const chunk = new Uint8Array(64 * 1024);
    let sent = conns.length * "admitted".length;
    const sending = conns.map(async (conn) => {
      try {
        for (;;) {
          const n = await conn.write(chunk);
          sent += n;
        }
      } catch {
        // Closed by the drain.
      }
    });
    try {
      await echod.requestStop();
      assert.equal((await echod.exited()).code, 0);
      await Promise.all(sending);
    } finally {
      conns.forEach(closeQuietly);
    }
    // Every connection was still open at the drain's end (each worker closes its own).
    const closing = echod.records.filter((r) => r.message.endsWith("connections still open"));
    assert.equal(closing.reduce((sum, r) => sum + (r.active as number), 0), 4);
    const stopped = await echod.waitForMessage("stopped");
    const { bytesIn, bytesOut, drainCut } = stopped as Record<string, number>;
    const figures = `${bytesIn} in, ${bytesOut} out, ${drainCut} cut; the clients sent ${sent}`;
    assert.ok(bytesIn <= sent, `echod read more than was sent: ${figures}`);
    assert.ok(bytesIn > bytesOut, `nothing was in flight at the drain's end: ${figures}`);
    assert.equal(bytesIn, bytesOut + drainCut, figures);
    assert.match(stopped.message, new RegExp(`, ${drainCut} bytes cut by the drain$`));
  });
}
