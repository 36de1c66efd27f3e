/**
 * Signals a daemon gets besides SIGTERM: none may kill echod without a
 * drain. SIGHUP reopens the log file (logrotate), SIGUSR1 and SIGUSR2 are
 * ignored (SIGUSR1 once the debugger Deno opens on it is closed), SIGQUIT
 * stops gracefully like SIGTERM.
 * POSIX signals: not sent on Windows (its own stop signals are tested in
 * lifecycle_test.ts).
 */

import assert from "node:assert/strict";
import { connect, roundTrip } from "../_client.ts";
import { type LogRecord, startEchod, waitForLogFile } from "../_echod.ts";
import { poll } from "../_poll.ts";

const ignore = Deno.build.os === "windows";
if (ignore) {
  console.log("skipping the POSIX signal tests: Windows has no SIGHUP, SIGUSR1/2 or SIGQUIT");
}

Deno.test({
  name:
    "SIGUSR1 leaves no debugger open (Deno opens one on it), SIGUSR2 is ignored; echod serves on",
  ignore,
}, async () => {
  const echod = await startEchod();
  try {
    // Deno arms its own SIGUSR1 handler 500 ms after start (a runtime constant): wait that long.
    await new Promise((r) => setTimeout(r, 600));
    echod.kill("SIGUSR1");
    await echod.waitForMessage("received SIGUSR1: closed the debugger");
    // The debugger port answers no one once echod has closed it (a second close follows in 100 ms).
    await poll(
      () =>
        Deno.connect({ hostname: "127.0.0.1", port: 9229 })
          .then((c) => c.close(), () => true),
      { what: "the debugger to stop listening on 127.0.0.1:9229", timeoutMs: 1_000 },
    );
    echod.kill("SIGUSR2");
    await echod.waitForMessage("received SIGUSR2: ignored");
    const conn = await connect("127.0.0.1", echod.port);
    assert.equal(await roundTrip(conn, "alive"), "alive");
    conn.close();
  } finally {
    assert.equal((await echod.stop()).code, 0);
  }
});

Deno.test({ name: "SIGQUIT drains like SIGTERM and exits 0", ignore }, async () => {
  const echod = await startEchod(["--drain-timeout", "5s"]);
  const conn = await connect("127.0.0.1", echod.port);
  // Accepted (not just in the backlog) before the signal.
  assert.equal(await roundTrip(conn, "before"), "before");
  echod.kill("SIGQUIT");
  await echod.waitForMessage("received SIGQUIT: no longer accepting connections");
  // The open connection is still served during the drain.
  assert.equal(await roundTrip(conn, "draining"), "draining");
  conn.close();
  assert.equal((await echod.exited()).code, 0);
});

Deno.test({ name: "SIGHUP reopens --log-file after logrotate moved it", ignore }, async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/echod.log`;
  try {
    const echod = await startEchod(["--log-file", path], {
      permissions: ["--allow-net", `--allow-write=${dir}`],
      waitReady: false,
    });
    const saying = (text: string) => (r: LogRecord) => r.message.includes(text);
    await waitForLogFile(path, saying("listening on"));
    await Deno.rename(path, `${path}.1`);
    echod.kill("SIGHUP");
    const fresh = await waitForLogFile(path, saying("received SIGHUP: reopened the log file"));
    assert.ok(!fresh.some(saying("listening on")), "the new file should start after the rotation");
    assert.equal((await echod.stop()).code, 0);
    assert.match(await Deno.readTextFile(path), /stopped:/);
    assert.match(await Deno.readTextFile(`${path}.1`), /listening on/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
