/**
 * echod as a native Windows service, end to end: installed with `echod
 * service install` (the Service Control Manager through FFI), controlled
 * with `sc.exe`, echoing over IPv4 and IPv6, draining on `sc stop`, seen by
 * the SCM after a crash, stopped, started and restarted with `echod service`,
 * updated by a second install, and removed.
 *
 * Windows only (the Windows lane runs it under Wine; ci.yml on windows-latest).
 * It needs Administrator and a free service name `echod`.
 */

import assert from "node:assert/strict";
import { connect, roundTrip } from "./_client.ts";
import { runEchod, WINE } from "./_echod.ts";
import { poll } from "./_poll.ts";
import { has } from "./_programs.ts";
import { NOT_INSTALLED } from "../lib/service/system.ts";

const WINDOWS = Deno.build.os === "windows";
// Wine's service manager differs from Windows in one place (below).
const PERMISSIONS = ["--allow-net", "--allow-ffi", "--allow-read", "--allow-write", "--allow-run"];

function skipReason(): string | undefined {
  if (!WINDOWS) return `it needs the Windows service manager (this is ${Deno.build.os})`;
  if (!has("sc.exe")) return "sc.exe is not on PATH";
  return undefined;
}

const reason = skipReason();
if (reason !== undefined) console.log(`skipping the Windows service lifecycle test: ${reason}`);

/** `sc.exe ARGS`, its output. */
async function sc(...args: string[]): Promise<string> {
  const output = await new Deno.Command("sc.exe", { args, stdin: "null" }).output();
  return new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
}

/** Polls `sc query echod` until its STATE is `state` (the SCM has no way to wait). */
async function waitForState(state: string, timeout = 30_000): Promise<string> {
  let last = "";
  return await poll(async () => {
    last = await sc("query", "echod");
    return new RegExp(`STATE\\s*:\\s*\\d+\\s+${state}`).test(last) ? last : undefined;
  }, {
    what: `the service to reach ${state}`,
    timeoutMs: timeout,
    intervalMs: 200,
    describe: () => `\n${last}`,
  });
}

async function echoOnce(hostname: string, port: number, text: string): Promise<string> {
  const conn = await connect(hostname, port);
  try {
    return await roundTrip(conn, text);
  } finally {
    conn.close();
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test({
  name:
    "Windows service: install, echo on IPv4 and IPv6, drain on sc stop, crash, stop/start/restart, update, uninstall",
  ignore: reason !== undefined,
  sanitizeResources: false,
  async fn(t) {
    const port = freePort();
    const dir = await Deno.makeTempDir({ prefix: "echod-service-" });
    const logFile = `${dir}\\echod.log`;
    const serve = ["--port", String(port), "--log-file", logFile, "--drain-timeout", "20s"];
    const before = await runEchod(["service", "status"], PERMISSIONS);
    if (/denied/.test(before.stderr)) {
      console.log("skipping the Windows service lifecycle test: it needs Administrator");
      return;
    }
    assert.equal(before.code, 4, `a service named echod is already installed:\n${before.stdout}`);
    try {
      await t.step("install starts it; sc query says RUNNING", async () => {
        const install = await runEchod(["service", "install", "--", ...serve], PERMISSIONS);
        assert.equal(install.code, 0, install.stderr);
        assert.match(install.stdout, /installed and running as the Windows service echod/);
        assert.match(await sc("query", "echod"), /RUNNING/);
        const status = await runEchod(["service", "status"], PERMISSIONS);
        assert.equal(status.code, 0);
        assert.match(status.stdout, /^echod: RUNNING \(pid \d+\)/);
      });

      await t.step("it echoes over IPv4 and IPv6", async () => {
        assert.equal(await echoOnce("127.0.0.1", port, "over IPv4"), "over IPv4");
        assert.equal(await echoOnce("::1", port, "over IPv6"), "over IPv6");
      });

      await t.step(
        "sc stop drains: a connected client gets its bytes, then the close",
        async () => {
          const conn = await connect("127.0.0.1", port);
          assert.equal(await roundTrip(conn, "before"), "before");
          assert.match(await sc("stop", "echod"), /STOP_PENDING/);
          const pending = await waitForState("STOP_PENDING");
          assert.match(pending, /WAIT_HINT\s*:\s*0x[1-9a-f]/i, "a wait hint while draining");
          // Still echoing while it drains.
          assert.equal(await roundTrip(conn, "while stopping"), "while stopping");
          await conn.closeWrite();
          assert.equal(await conn.read(new Uint8Array(1)), null);
          conn.close();
          const stopped = await waitForState("STOPPED");
          assert.match(stopped, /WIN32_EXIT_CODE\s*:\s*0\b/);
          const log = await Deno.readTextFile(logFile);
          assert.match(log, /received SERVICE_CONTROL_STOP/);
          assert.match(log, /stopped: \d+ connections accepted/);
          const status = await runEchod(["service", "status"], PERMISSIONS);
          assert.equal(status.code, 3);
          assert.match(status.stdout, /STOPPED, last exit: Win32 exit code 0/);
        },
      );

      await t.step("a crash is seen by the SCM (and restarted, on Windows)", async () => {
        await sc("start", "echod");
        await waitForState("RUNNING");
        const status = await runEchod(["service", "status"], PERMISSIONS);
        const pid = Number(/pid (\d+)/.exec(status.stdout)?.[1]);
        assert.ok(pid > 0, status.stdout);
        Deno.kill(pid, "SIGKILL");
        if (WINE) {
          // Wine's service manager stores failure actions but never runs them.
          const stopped = await waitForState("STOPPED");
          assert.match(stopped, /WIN32_EXIT_CODE\s*:\s*1067\b/, "ERROR_PROCESS_ABORTED");
          console.log(
            "skipping the restart check: Wine's service manager does not run failure actions",
          );
          return;
        }
        // Restarted 5 s after the crash (the first failure action).
        await poll(async () => {
          const again = (await runEchod(["service", "status"], PERMISSIONS)).stdout;
          const now = Number(/RUNNING \(pid (\d+)\)/.exec(again)?.[1] ?? 0);
          return now !== 0 && now !== pid ? now : undefined;
        }, { what: "the SCM to restart echod", timeoutMs: 30_000, intervalMs: 500 });
      });

      await t.step("echod service stop, start and restart drive the SCM", async () => {
        const stop = await runEchod(["service", "stop"], PERMISSIONS);
        assert.equal(stop.code, 0, stop.stderr);
        assert.equal(stop.stdout, "echod is stopped (sc query echod)\n");
        assert.match(await sc("query", "echod"), /STOPPED/);
        await assertRejectsConnect(port);
        const start = await runEchod(["service", "start"], PERMISSIONS);
        assert.equal(start.code, 0, start.stderr);
        const first = Number(
          /^echod is running \(pid (\d+); sc query echod\)$/m.exec(start.stdout)?.[1],
        );
        assert.ok(first > 0, start.stdout);
        assert.equal(await echoOnce("127.0.0.1", port, "started"), "started");
        const restart = await runEchod(["service", "restart"], PERMISSIONS);
        assert.equal(restart.code, 0, restart.stderr);
        const second = Number(
          /^echod is restarted \(pid (\d+); sc query echod\)$/m.exec(restart.stdout)?.[1],
        );
        assert.ok(second > 0 && second !== first, `pid ${first}, then ${restart.stdout}`);
        assert.equal(await echoOnce("::1", port, "restarted"), "restarted");
      });

      await t.step("install again updates it and starts it", async () => {
        const install = await runEchod(
          ["service", "install", "--", ...serve, "--max-conns", "100"],
          PERMISSIONS,
        );
        assert.equal(install.code, 0, install.stderr);
        assert.match(install.stdout, /updated and restarted/);
        assert.equal(await echoOnce("127.0.0.1", port, "updated"), "updated");
      });

      await t.step("uninstall stops and removes it", async () => {
        const uninstall = await runEchod(["service", "uninstall"], PERMISSIONS);
        assert.equal(uninstall.code, 0, uninstall.stderr);
        assert.match(uninstall.stdout, /stopped and removed/);
        const status = await runEchod(["service", "status"], PERMISSIONS);
        assert.equal(status.code, 4);
        assert.match(status.stdout, /not installed/);
        await assertRejectsConnect(port);
        const start = await runEchod(["service", "start"], PERMISSIONS);
        assert.equal(start.code, 1);
        assert.equal(start.stderr, `echod: ${NOT_INSTALLED}\n`);
      });
    } finally {
      await runEchod(["service", "uninstall"], PERMISSIONS);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "echod service run from a console says the service manager starts it",
  ignore: !WINDOWS,
  async fn() {
    const run = await runEchod(["service", "run", "--", "--port", "0"], PERMISSIONS);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /must be started by the Windows service manager/);
  },
});

async function assertRejectsConnect(port: number): Promise<void> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
  } catch {
    return;
  }
  throw new Error(`port ${port} still accepts connections after uninstall`);
}
