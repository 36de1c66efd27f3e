/**
 * The smoke test every echod build must pass on its own OS before it is
 * published (release.yml) and after every CI compile (ci.yml).
 *
 * ```sh
 * deno run -A scripts/smoke.ts dist/echod-x86_64-unknown-linux-gnu/echod x86_64-unknown-linux-gnu
 * deno task smoke          # the same against `deno run main.ts`, this OS's target
 * deno run -A scripts/smoke.ts --deno --cached-only   # flags after --deno go to deno run
 * ```
 *
 * Checks: `--version` names the target; `serve` on a free port echoes over
 * IPv4 and IPv6 (where the host has IPv6) through `echod client`; `bench`
 * for a second with 0 errors; `--udp` echoes a datagram; `service print`
 * for this OS; SIGTERM with a client connected drains and exits 0 (on
 * Windows, where a parent cannot send Ctrl-Break: `sc stop` of the service).
 * Prints one line per check and ends with `smoke: N passed, N failed`.
 *
 * @module
 */

import { runProgram } from "../lib/process.ts";

/** How to start echod: a compiled binary, or Deno running main.ts. */
function echodCommand(): { program: string; prefix: string[]; target: string } {
  const [binary, target] = Deno.args;
  if (binary !== undefined && binary !== "--deno") {
    return { program: binary, prefix: [], target: target ?? Deno.build.target };
  }
  const main = new URL("../main.ts", import.meta.url).pathname.replace(/^\/([A-Za-z]:)/, "$1");
  // Flags after --deno go to every deno run (the Windows lane: --cached-only).
  const extra = Deno.args.slice(1);
  return {
    program: Deno.execPath(),
    // What each command needs, and no prompt.
    prefix: [
      "run",
      ...extra,
      "--allow-net",
      "--allow-read",
      "--allow-write",
      // The Windows service commands: the SCM through FFI, netsh for the firewall.
      ...(Deno.build.os === "windows" ? ["--allow-ffi", "--allow-run=netsh.exe"] : []),
      "--no-prompt",
      main,
    ],
    target: Deno.build.target,
  };
}

const { program, prefix, target } = echodCommand();
const WINDOWS = Deno.build.os === "windows";
let passed = 0;
let failed = 0;

async function check(name: string, fn: () => Promise<string | void>): Promise<void> {
  try {
    const detail = await fn();
    passed++;
    console.log(`ok    ${name}${detail ? `: ${detail}` : ""}`);
  } catch (error) {
    failed++;
    console.log(`FAIL  ${name}: ${(error as Error).message}`);
  }
}

function assert(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

async function run(
  args: string[],
  stdin?: string,
): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await runProgram(program, [...prefix, ...args], {
    input: stdin,
  });
  return { code, out: stdout, err: stderr };
}

/** Starts `echod serve` and resolves with it and its port once it listens. */
async function serve(
  args: string[],
): Promise<{ child: Deno.ChildProcess; port: number; log: string[] }> {
  const child = new Deno.Command(program, {
    args: [...prefix, "serve", "--port", "0", "--log-format", "json", ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let rest = "";
  const deadline = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`echod exited before listening: ${log.join(" | ")}`);
      const parts = (rest + value).split("\n");
      rest = parts.pop() ?? "";
      for (const line of parts) {
        log.push(line);
        const record = JSON.parse(line);
        if (String(record.message).includes("listening on")) {
          // Keep reading the log in the background so echod never blocks on it.
          (async () => {
            for (;;) {
              const { value: more, done: end } = await lines.read().catch(() => ({
                value: "",
                done: true,
              }));
              if (end) return;
              log.push(...String(more).split("\n").filter((l) => l !== ""));
            }
          })();
          return { child, port: record.port, log };
        }
      }
    }
  } finally {
    clearTimeout(deadline);
  }
}

function hasIpv6(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

await check("--version names the target", async () => {
  const { code, out } = await run(["--version"]);
  assert(code === 0, `exit ${code}`);
  assert(out.includes(target), `'${out.trim()}' does not name ${target}`);
  return out.split("\n")[0];
});

const server = await serve(["--udp"]);
try {
  await check("echo over IPv4 with echod client", async () => {
    const { code, out } = await run(["client", `127.0.0.1:${server.port}`], "smoke v4\n");
    assert(code === 0 && out === "smoke v4\n", `exit ${code}, got ${JSON.stringify(out)}`);
  });
  if (hasIpv6()) {
    await check("echo over IPv6 with echod client", async () => {
      const { code, out } = await run(["client", `[::1]:${server.port}`], "smoke v6\n");
      assert(code === 0 && out === "smoke v6\n", `exit ${code}, got ${JSON.stringify(out)}`);
    });
  } else {
    console.log("skip  echo over IPv6: this host has no IPv6 loopback");
  }
  await check("bench for a second with 0 errors", async () => {
    const { code, out } = await run([
      "bench",
      `127.0.0.1:${server.port}`,
      "-c",
      "4",
      "-d",
      "1s",
      "--warmup",
      "0",
      "--json",
    ]);
    const report = JSON.parse(out);
    assert(code === 0 && report.errorCount === 0, `exit ${code}, ${report.errorCount} errors`);
    assert(report.operations > 0, "no message went through");
    return `${report.operations} messages`;
  });
  await check("--udp echoes a datagram", async () => {
    const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    try {
      await socket.send(new TextEncoder().encode("smoke"), {
        transport: "udp",
        hostname: "127.0.0.1",
        port: server.port,
      });
      const timer = setTimeout(() => socket.close(), 5_000);
      const [data] = await socket.receive();
      clearTimeout(timer);
      assert(new TextDecoder().decode(data) === "smoke", "a different datagram came back");
    } finally {
      try {
        socket.close();
      } catch {
        // Closed by the timer.
      }
    }
  });
} finally {
  server.child.kill(WINDOWS ? "SIGKILL" : "SIGTERM");
  await server.child.status;
}

await check("service print for this OS", async () => {
  const kind = WINDOWS ? "windows" : Deno.build.os === "darwin" ? "launchd" : "systemd";
  const marker = { windows: "New-Service", launchd: "<plist", systemd: "[Service]" }[kind];
  const { code, out, err } = await run(["service", "print", kind, "--", "--port", "7007"]);
  assert(code === 0, `exit ${code}: ${err.trim()}`);
  assert(out.includes(marker), `no ${marker} in the ${kind} definition`);
});

if (WINDOWS) {
  // A parent cannot send Ctrl-Break to a child on Windows: the graceful stop
  // there is the service stop. Needs Administrator (GitHub's runners are).
  const installed = await run(["service", "status"]);
  if (installed.code !== 4) {
    console.log(
      `skip  the service stop drains: ${
        /denied/.test(installed.err)
          ? "not run as Administrator"
          : "a service named echod is installed already"
      }`,
    );
  } else {
    await check("the Windows service drains on sc stop and exits 0", serviceStopDrains);
  }
} else {
  await check("SIGTERM with a client connected drains and exits 0", async () => {
    const echod = await serve(["--drain-timeout", "5s"]);
    await echoesWhileStopping(echod.port, async () => {
      echod.child.kill("SIGTERM");
      for (let i = 0; i < 200 && !echod.log.some((l) => l.includes("draining")); i++) {
        await new Promise((r) => setTimeout(r, 25)); // polling the log for the drain line
      }
    });
    const status = await echod.child.status;
    assert(status.code === 0, `exit ${status.code}`);
  });
}

/**
 * With a client connected and echoing, runs `stop` (which returns once the
 * drain has begun), then checks that the client is still echoed.
 */
async function echoesWhileStopping(port: number, stop: () => Promise<void>): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const buf = new Uint8Array(5);
  await conn.write(new TextEncoder().encode("first"));
  await conn.read(buf); // admitted and echoing
  await stop();
  await conn.write(new TextEncoder().encode("after"));
  let got = 0;
  while (got < 5) {
    const n = await conn.read(buf.subarray(got));
    assert(n !== null, "closed before echoing during the drain");
    got += n;
  }
  assert(new TextDecoder().decode(buf) === "after", "the echo during the drain differed");
  conn.close();
}

/** Installs the service, stops it with a client connected, checks the drain, removes it. */
async function serviceStopDrains(): Promise<string> {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const dir = await Deno.makeTempDir({ prefix: "echod-smoke-" });
  const install = await run([
    "service",
    "install",
    "--",
    "--port",
    String(port),
    "--log-file",
    `${dir}\\echod.log`,
    "--drain-timeout",
    "5s",
  ]);
  try {
    assert(install.code === 0, `install: exit ${install.code}: ${install.err.trim()}`);
    await echoesWhileStopping(port, async () => {
      await sc("stop");
      await scState("STOP_PENDING");
    });
    const stopped = await scState("STOPPED");
    assert(/WIN32_EXIT_CODE\s*:\s*0\b/.test(stopped), `stopped with an error:\n${stopped}`);
    return "STOP_PENDING, echoed during the drain, STOPPED with exit code 0";
  } finally {
    await run(["service", "uninstall"]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function sc(action: string): Promise<string> {
  const output = await new Deno.Command("sc.exe", { args: [action, "echod"] }).output();
  return new TextDecoder().decode(output.stdout);
}

/** Polls `sc query echod` (the SCM has no way to wait) until it shows `state`. */
async function scState(state: string): Promise<string> {
  let text = "";
  for (let i = 0; i < 150; i++) {
    text = await sc("query");
    if (new RegExp(`STATE\\s*:\\s*\\d+\\s+${state}`).test(text)) return text;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the service did not reach ${state}:\n${text}`);
}

console.log(`smoke: ${passed} passed, ${failed} failed`);
Deno.exit(failed === 0 ? 0 : 1);
