/**
 * `echod bench` and `echod client` as users run them: against echod, and
 * against deliberately broken echo servers the bench must catch.
 */

import assert from "node:assert/strict";
import { parseTarget } from "../lib/cli/mod.ts";
import { ROOT, runEchod, startEchod } from "./_echod.ts";
import { DENO_FLAGS, has } from "./_programs.ts";

/**
 * A faulty echo server in this process: `corrupt` flips one byte in every
 * 10,000th chunk, `truncate` closes after echoing 10,000 bytes.
 */
function faultyServer(fault: "corrupt" | "truncate"): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buf = new Uint8Array(4096);
        let total = 0;
        let chunks = 0;
        try {
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            if (fault === "corrupt" && ++chunks % 50 === 0) buf[0] ^= 0xff;
            total += n;
            if (fault === "truncate" && total > 10_000) break;
            for (let w = 0; w < n;) w += await conn.write(buf.subarray(w, n));
          }
        } catch {
          // The bench hung up.
        } finally {
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // Already closed.
          }
        }
      })();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close() {
      listener.close();
      for (const conn of conns) conn.close();
    },
  };
}

Deno.test("echod bench rr against echod: every message verified, latency reported", async () => {
  const echod = await startEchod();
  try {
    const { code, stdout, stderr } = await runEchod([
      "bench",
      `127.0.0.1:${echod.port}`,
      "-c",
      "8",
      "-d",
      "1s",
      "--warmup",
      "200ms",
      "--json",
    ]);
    assert.equal(code, 0);
    assert.equal(stderr, "", "progress shown although stderr is not a terminal");
    const report = JSON.parse(stdout);
    assert.equal(report.mode, "rr");
    assert.equal(report.errorCount, 0);
    assert.ok(report.operations > 100, `only ${report.operations} messages`);
    assert.equal(report.verifiedBytes, report.operations * 512);
    assert.equal(report.latency.count, report.operations);
    assert.ok(report.latency.p50 > 0 && report.latency.p50 <= report.latency.p99);
  } finally {
    await echod.stop();
  }
});

Deno.test("echod bench stream, connect and hold modes against echod over IPv6", async () => {
  const echod = await startEchod(["--max-conns-per-ip", "0"]);
  try {
    for (
      const [mode, extra] of [["stream", ["-c", "2"]], ["connect", ["-c", "4"]], ["hold", [
        "-c",
        "300",
        "-d",
        "100ms",
      ]]]
    ) {
      const { code, stdout, stderr } = await runEchod([
        "bench",
        `[::1]:${echod.port}`,
        "--mode",
        mode as string,
        "-d",
        "500ms",
        "--warmup",
        "100ms",
        "--json",
        ...extra,
      ]);
      assert.equal(code, 0, stderr);
      const report = JSON.parse(stdout);
      assert.equal(report.errorCount, 0, mode as string);
      assert.ok(report.verifiedBytes > 0, mode as string);
      if (mode === "hold") assert.equal(report.operations, 300);
    }
  } finally {
    await echod.stop();
  }
});

Deno.test("echod bench --workers 2 spreads the connections and merges the reports", async () => {
  const echod = await startEchod();
  try {
    const { code, stdout, stderr } = await runEchod(
      [
        "bench",
        `[::1]:${echod.port}`,
        "-c",
        "6",
        "-w",
        "2",
        "-d",
        "500ms",
        "--warmup",
        "100ms",
        "--json",
      ],
      ["--allow-net", "--allow-read"],
    );
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout);
    assert.equal(report.connections, 6);
    assert.equal(report.errorCount, 0);
    assert.equal(report.latency.count, report.operations);
    assert.equal(report.verifiedBytes, report.operations * 512);
  } finally {
    await echod.stop();
  }
});

const hasScript = has("script");
if (!hasScript) {
  console.log("skipping the progress-line test: script (util-linux) is not installed");
}

Deno.test({
  name: "echod bench shows one updating progress line on a terminal",
  ignore: !hasScript,
  async fn() {
    const echod = await startEchod();
    try {
      // script(1) gives the bench a pseudo-terminal, as a person's shell would.
      const bench = [Deno.execPath(), "run", ...DENO_FLAGS, "--allow-net", "main.ts", "bench"]
        .concat([`127.0.0.1:${echod.port}`, "-c", "4", "-d", "2500ms", "--warmup", "0"]);
      const out = await new Deno.Command("script", {
        args: ["-qec", bench.join(" "), "/dev/null"],
        cwd: ROOT,
        env: { NO_COLOR: "1" },
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, text);
      const updates = text.split("\r").filter((part) =>
        /\d+s {2}[\d,]+ done {2}[\d,]+\/s {2}errors 0/.test(part)
      );
      assert.ok(updates.length >= 2, `progress updates: ${JSON.stringify(text.slice(0, 300))}`);
      assert.match(text, /echod bench rr → 127\.0\.0\.1:\d+: 4 connections/);
    } finally {
      await echod.stop();
    }
  },
});

Deno.test("echod bench catches a server that corrupts bytes, and exits 1", async () => {
  const server = faultyServer("corrupt");
  try {
    const { code, stdout } = await runEchod([
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
    assert.equal(code, 1);
    const report = JSON.parse(stdout);
    assert.ok(report.errors.mismatch > 0, JSON.stringify(report.errors));
  } finally {
    server.close();
  }
});

Deno.test("echod bench stream catches a server that stops echoing early", async () => {
  const server = faultyServer("truncate");
  try {
    const { code, stdout } = await runEchod([
      "bench",
      `127.0.0.1:${server.port}`,
      "--mode",
      "stream",
      "-c",
      "2",
      "-d",
      "500ms",
      "--warmup",
      "0",
      "--json",
    ]);
    assert.equal(code, 1);
    const report = JSON.parse(stdout);
    // A close with the bench's bytes still unread is a reset on Windows (and
    // can be on Linux): either way the stream was cut, and counted so.
    const cut = report.errors["early-close"] + report.errors.reset;
    assert.ok(cut > 0, JSON.stringify(report.errors));
    assert.equal(report.errors.mismatch, 0);
  } finally {
    server.close();
  }
});

Deno.test("echod bench against a closed port: one line, exit 1", async () => {
  const { code, stderr } = await runEchod(["bench", "127.0.0.1:9", "-d", "1s"]);
  assert.equal(code, 1);
  assert.equal(stderr, "echod: cannot connect to 127.0.0.1:9: connection refused\n");
});

Deno.test("echod bench --html writes a self-contained report", async () => {
  const echod = await startEchod();
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/report.html`;
    const bench = [
      "bench",
      `127.0.0.1:${echod.port}`,
      "-c",
      "2",
      "-d",
      "300ms",
      "--warmup",
      "0",
      "--html",
      path,
    ];
    const denied = await runEchod(bench);
    assert.equal(denied.code, 2);
    assert.match(denied.stderr, /^echod: --html .* needs write permission/);
    const { code } = await runEchod(bench, ["--allow-net", `--allow-write=${path}`]);
    assert.equal(code, 0);
    const html = await Deno.readTextFile(path);
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /<svg[^>]*aria-label="latency by percentile"/);
    assert.doesNotMatch(html, /<script|src=|href=/);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await echod.stop();
  }
});

Deno.test("echod client sends stdin, prints the echo, and exits 0 at the end", async () => {
  const echod = await startEchod();
  try {
    const text = "line one\nline two\n" + "x".repeat(200_000) + "\n";
    for (const target of [`127.0.0.1:${echod.port}`, `[::1]:${echod.port}`]) {
      const { code, stdout, stderr } = await runEchod(["client", target], undefined, {
        input: text,
      });
      assert.equal(code, 0, stderr);
      assert.equal(stdout, text);
    }
  } finally {
    await echod.stop();
  }
});

Deno.test("echod client says so when the server closes before the input ends", async () => {
  const echod = await startEchod(["--idle-timeout", "300ms"]);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...DENO_FLAGS,
      "--allow-net",
      "--no-prompt",
      "main.ts",
      "client",
      `127.0.0.1:${echod.port}`,
    ],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    // One line, then silence with stdin still open: echod's idle timeout ends it.
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("before the timeout\n"));
    const output = await child.output();
    const stdout = new TextDecoder().decode(output.stdout);
    assert.equal(output.code, 1);
    assert.equal(stdout, "before the timeout\n");
    assert.equal(
      new TextDecoder().decode(output.stderr),
      `echod: 127.0.0.1:${echod.port} closed the connection before the input ended\n`,
    );
    await writer.close().catch(() => {});
  } finally {
    await echod.stop();
  }
});

Deno.test("echod client reports a refused connection in one line, exit 1", async () => {
  const { code, stderr } = await runEchod(["client", "127.0.0.1:9"], undefined, { input: "" });
  assert.equal(code, 1);
  assert.equal(
    stderr,
    "echod: cannot connect to 127.0.0.1:9: connection refused (is a server listening there?)\n",
  );
});

Deno.test("echod client and bench usage errors", async () => {
  for (
    const [args, message] of [
      [["client"], "echod client needs a server to talk to: echod client HOST:PORT [options]"],
      [["client", "::1", "--ipv4"], "::1 is not an IPv4 address (--ipv4)"],
      [["client", "h:1", "-4", "-6"], "--ipv4 and --ipv6 exclude each other: give one"],
      [["client", "h:99999"], "port 99999 is out of range (0-65535)"],
      [
        ["bench", "h:1", "--mode", "pingpong"],
        "--mode 'pingpong' is not one of rr, stream, connect, hold",
      ],
      [["bench", "h:1", "-c", "0"], "--connections must be at least 1 (got 0)"],
      [["bench", "h:1", "--size", "1XB"], "--size '1XB' is not a size: use e.g. 512, 64KiB, 1MiB"],
      [["bench", "h:1", "-d", "0"], "--duration must be more than 0 (1ms to 596h)"],
      [
        ["bench", "h:1", "-c", "2", "-w", "3"],
        "--workers 3 is more than --connections 2: each worker needs one",
      ],
      [
        ["bench", "h:1", "--max-conns", "3"],
        "unknown option --max-conns (it belongs to echod serve)",
      ],
    ] as [string[], string][]
  ) {
    const { code, stderr } = await runEchod(args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(stderr, `echod: ${message}\n`);
  }
});

Deno.test("parseTarget reads host:port, [v6]:port and bare hosts", () => {
  assert.deepEqual(parseTarget("127.0.0.1:7"), { host: "127.0.0.1", port: 7 });
  assert.deepEqual(parseTarget("[::1]:7"), { host: "::1", port: 7 });
  assert.deepEqual(parseTarget("[::1]"), { host: "::1", port: 40007 });
  assert.deepEqual(parseTarget("::1"), { host: "::1", port: 40007 });
  assert.deepEqual(parseTarget("example.net"), { host: "example.net", port: 40007 });
  assert.throws(() => parseTarget(":7"));
  assert.throws(() => parseTarget("1:2:3"));
});
