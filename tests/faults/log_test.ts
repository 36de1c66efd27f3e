/**
 * Logging under pressure: a stderr nobody reads must not stop echoing or
 * shutting down; the lines that could not be written are counted. (A log
 * file that cannot be reopened or written: `posix/log_file_test.ts`.)
 */

import assert from "node:assert/strict";
import { closeQuietly, connect, roundTrip } from "../_client.ts";
import { postQuit, ROOT, SIGNALS, skipUnless, WINE } from "../_echod.ts";
import { DENO_FLAGS } from "../_programs.ts";
import { poll } from "../_poll.ts";

/**
 * Starts echod at debug level with stderr on a pipe that is not read, and
 * floods it with 3,000 connections (two log lines each, about 650 KB: past
 * the pipe's 64 KiB and echod's 256 KiB queue). The readiness line is in that pipe, so readiness is a connect
 * that succeeds; the port is fixed, below the ephemeral range.
 */
/** Connections in the flood: two debug lines each, past the pipe and the queue. */
const FLOOD = 3_000;

/**
 * Under Wine a write blocked on a full pipe (in echod's stderr worker) slows
 * the whole process's sockets: one echo took 6 to 37 s. Real Windows blocks
 * only the writing thread; this lane cannot show it.
 */
const WINE_STALL = "under Wine a write blocked on a full pipe slows every socket of the process";

async function stalledEchod(): Promise<{ child: Deno.ChildProcess; port: number }> {
  const port = 20_000 + Math.floor(Math.random() * 10_000);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...DENO_FLAGS, "--allow-net", "main.ts", "--port", String(port)]
      .concat(["--log-level", "debug", "--max-conns-per-ip", "0"])
      .concat(SIGNALS ? [] : ["--metrics", `127.0.0.1:${port + 1}`, "--quitquitquit"]),
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    const conn = await poll(() => connect("127.0.0.1", port), {
      what: `echod to listen on port ${port}`,
      timeoutMs: 10_000,
    });
    conn.close();
    for (let i = 0; i < FLOOD; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: 100 }, () => connect("127.0.0.1", port)),
      );
      batch.forEach(closeQuietly);
    }
    const began = performance.now();
    const probe = await connect("127.0.0.1", port);
    assert.equal(await roundTrip(probe, "still echoing"), "still echoing");
    probe.close();
    const ms = performance.now() - began;
    assert.ok(ms < 1_000, `echo was slowed by the stalled log: ${ms.toFixed(0)} ms`);
    return { child, port };
  } catch (error) {
    // A failure here must not leave echod running (and flooding the next test).
    kill(child);
    await child.stderr.cancel().catch(() => {});
    throw error;
  }
}

function kill(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch {
    // Already gone.
  }
}

/** Asks a stalled echod to stop: SIGTERM, or on Windows POST /quitquitquit (see `SIGNALS`). */
async function requestStop(child: Deno.ChildProcess, port: number): Promise<void> {
  if (SIGNALS) child.kill("SIGTERM");
  else await postQuit(`127.0.0.1:${port + 1}`);
}

Deno.test({
  name: "a stalled stderr (a pipe nobody reads) neither slows echoing nor holds up SIGTERM",
  ignore: skipUnless(!WINE, "the stalled-stderr test", WINE_STALL),
  async fn() {
    const { child, port } = await stalledEchod();
    try {
      await requestStop(child, port);
      const exited = await Promise.race([
        child.status,
        new Promise<null>((r) => setTimeout(() => r(null), 8_000)),
      ]);
      assert.ok(exited !== null, "SIGTERM did not stop echod within 8 s");
      assert.equal(exited.code, 0);
    } finally {
      kill(child);
      await child.stderr.cancel().catch(() => {});
    }
  },
});

Deno.test({
  name: "log lines dropped while stderr was stalled are counted in a line once it moves",
  ignore: skipUnless(!WINE, "the dropped-lines test", WINE_STALL),
  async fn() {
    const { child, port } = await stalledEchod();
    try {
      const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      // One more connection after the reader starts: its lines follow the count.
      const more = await connect("127.0.0.1", port);
      more.close();
      const guard = setTimeout(() => kill(child), 20_000); // against a hung test only
      while (!/log lines dropped/.test(seen)) {
        const { value, done } = await lines.read();
        if (done) break;
        seen += value;
      }
      clearTimeout(guard);
      assert.match(seen, /echod: \d+ log lines dropped: the log output was not keeping up/);
      await requestStop(child, port);
      lines.releaseLock();
      await child.stderr.cancel().catch(() => {});
      assert.equal((await child.status).code, 0);
    } finally {
      kill(child);
    }
  },
});
