/**
 * --greeting and several --port: the line a connection gets before any
 * echo (plain, TLS, behind a PROXY header, behind HAProxy), and client and
 * bench that set it apart so that every echoed byte is still checked.
 */

import assert from "node:assert/strict";
import { closeQuietly, connect, roundTrip, writeAll } from "./_client.ts";
import { type Echod, ROOT, runEchod, skipUnless, startEchod } from "./_echod.ts";
import { metric, scrape } from "./_metrics.ts";
import { connectTls, startTlsEchod } from "./_tls.ts";
import { readLine } from "../lib/net.ts";
import { DENO_FLAGS } from "./_programs.ts";
import { HAS_HAPROXY, startHaproxy } from "./_haproxy.ts";

/** Connects, reads the greeting line, then checks that echo follows. */
async function greeted(host: string, port: number, conn?: Deno.Conn): Promise<string> {
  const c = conn ?? await connect(host, port);
  try {
    const { line, rest } = await readLine(c);
    assert.equal(rest.length, 0, "nothing may follow the greeting before the client sends");
    assert.equal(await roundTrip(c, "after the greeting"), "after the greeting");
    return line;
  } finally {
    closeQuietly(c);
  }
}

Deno.test("--greeting: one line before any echo, naming the server, the address reached and the client", async () => {
  const echod = await startEchod(["--greeting"]);
  try {
    const v4 = await greeted("127.0.0.1", echod.port);
    assert.match(
      v4,
      new RegExp(
        `^echod \\d+\\.\\d+\\.\\d+ on 127\\.0\\.0\\.1:${echod.port} \\(127\\.0\\.0\\.1:${echod.port}, tcp\\): you are 127\\.0\\.0\\.1:\\d+$`,
      ),
    );
    const v6 = await greeted("::1", echod.port);
    assert.match(v6, /\(\[::1\]:\d+, tcp\): you are \[::1\]:\d+$/);
    // Without --allow-sys, the host is the local address, and echod said why once.
    await echod.waitForMessage("--greeting: reading the host name needs --allow-sys=hostname");
  } finally {
    await echod.stop();
  }
});

Deno.test("--greeting names the host with --allow-sys=hostname; a template of one's own", async () => {
  const echod = await startEchod(["--greeting={host}|{client}|{proxy}|{via}|{transport}|{time}"], {
    permissions: ["--allow-net", "--allow-sys=hostname"],
  });
  try {
    const [host, client, proxy, via, transport, time] = (await greeted("127.0.0.1", echod.port))
      .split("|");
    assert.equal(host, Deno.hostname());
    assert.match(client, /^127\.0\.0\.1:\d+$/);
    assert.equal(proxy, "-");
    assert.equal(via, "");
    assert.equal(transport, "tcp");
    assert.ok(Math.abs(Date.parse(time) - Date.now()) < 60_000, time);
    assert.ok(!echod.records.some((r) => r.message.includes("--allow-sys")));
  } finally {
    await echod.stop();
  }
});

Deno.test("--greeting behind PROXY v1 and v2 headers names the client the proxy names, and the proxy", async () => {
  const echod = await startEchod([
    "--greeting={client}{via}",
    "--proxy-protocol",
    "--trusted-proxy",
    "127.0.0.1",
  ]);
  try {
    const v1 = await connect("127.0.0.1", echod.port);
    await writeAll(v1, new TextEncoder().encode("PROXY TCP4 203.0.113.7 192.0.2.1 5555 7\r\n"));
    assert.match(await greeted("", 0, v1), /^203\.0\.113\.7:5555 via 127\.0\.0\.1:\d+$/);
    const v2 = await connect("127.0.0.1", echod.port);
    const body = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 7, ...new Array(16).fill(0)]
      .concat([0x17, 0x70, 0, 7]);
    await writeAll(
      v2,
      new Uint8Array([
        ...[0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a],
        0x21,
        0x21,
        0,
        body.length,
        ...body,
      ]),
    );
    assert.match(await greeted("", 0, v2), /^\[2001:db8::7\]:6000 via 127\.0\.0\.1:\d+$/);
    // Not from a trusted proxy: no header expected, the peer itself.
    assert.match(await greeted("::1", echod.port), /^\[::1\]:\d+$/);
  } finally {
    await echod.stop();
  }
});

Deno.test({
  name: "--greeting over TLS comes after the handshake, inside TLS",
  async fn() {
    const echod = await startTlsEchod(["--greeting={transport} {local}"]);
    try {
      const line = await greeted("", 0, await connectTls("127.0.0.1", echod.port));
      assert.equal(line, `tls 127.0.0.1:${echod.port}`);
    } finally {
      await echod.stop();
    }
  },
});

Deno.test("several --port: each is served on every address, UDP too; the greeting names the port reached; /metrics per port", async () => {
  const echod = await startEchod([
    "--port",
    "0",
    "--port",
    "0",
    "--udp",
    "--greeting={local}",
    "--metrics",
    "127.0.0.1:0",
  ]);
  try {
    const ports = echod.ready!.ports as number[];
    assert.equal(ports.length, 3, "--port 0 (from the harness), and two more");
    assert.equal(new Set(ports).size, 3);
    for (const port of ports) {
      assert.equal(await greeted("127.0.0.1", port), `127.0.0.1:${port}`);
      assert.equal(await greeted("::1", port), `[::1]:${port}`);
      const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
      await socket.send(new Uint8Array([port & 0xff]), {
        transport: "udp",
        hostname: "127.0.0.1",
        port,
      });
      const [data] = await socket.receive();
      assert.deepEqual(
        data,
        new Uint8Array([port & 0xff]),
        "UDP echoes on every port, no greeting",
      );
      socket.close();
    }
    // /metrics counts each port's connections apart.
    const { text } = await scrape(echod);
    for (const port of ports) {
      assert.equal(metric(text, `echod_port_connections_accepted_total{port="${port}"}`), 2);
    }
  } finally {
    await echod.stop();
  }
});

Deno.test("--greeting and --port errors: one line each", async () => {
  for (
    const [args, message] of [
      [["--greeting={hots}"], "--greeting has an unknown placeholder {hots}: did you mean host?"],
      [["--greeting="], "--greeting= needs a value after = (--greeting=TEMPLATE)"],
      [["--greeting", "hello"], "unexpected argument 'hello': options start with --"],
      [["--port", "7007", "--port", "7007"], "--port 7007 is given twice"],
      [
        ["--port", "7007", "--port", "7008", "--workers", "2"],
        "--workers serves one --port: run one process per port, or leave out --workers",
      ],
    ] as [string[], string][]
  ) {
    const { code, stderr } = await runEchod(args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(stderr, `echod: ${message}\n`);
  }
});

async function bench(echod: Echod, extra: string[]): Promise<Record<string, unknown>> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...DENO_FLAGS, "--allow-net", "main.ts", "bench", `127.0.0.1:${echod.port}`]
      .concat(["-c", "4", "-d", "500ms", "--warmup", "0", "--json", ...extra]),
    cwd: ROOT,
    stdin: "null",
  }).output();
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

Deno.test("echod bench --expect-greeting verifies every byte against a greeting server; without it, mismatches", async () => {
  const echod = await startEchod(["--greeting"]);
  try {
    const skipped = await bench(echod, ["--expect-greeting"]);
    assert.equal(skipped.errorCount, 0);
    assert.ok((skipped.operations as number) > 0);
    const confused = await bench(echod, []);
    assert.ok((confused.errorCount as number) > 0, "the greeting counted as echo");
    const connects = await bench(echod, ["--mode", "connect", "--expect-greeting"]);
    assert.equal(connects.errorCount, 0);
  } finally {
    await echod.stop();
  }
});

Deno.test("echod client --expect-greeting: the greeting on stderr, only the echo on stdout", async () => {
  const echod = await startEchod(["--greeting=hello from {local}"]);
  try {
    const output = await runEchod(
      ["client", `127.0.0.1:${echod.port}`, "--expect-greeting"],
      undefined,
      { input: "just this\n" },
    );
    assert.equal(output.code, 0);
    assert.equal(output.stdout, "just this\n");
    assert.equal(output.stderr, `hello from 127.0.0.1:${echod.port}\n`);
  } finally {
    await echod.stop();
  }
});

for (const sendProxy of ["send-proxy", "send-proxy-v2"] as const) {
  Deno.test({
    name:
      `behind HAProxy (${sendProxy}): the greeting says which backend answered and the real client`,
    ignore: skipUnless(
      HAS_HAPROXY,
      `the HAProxy greeting test (${sendProxy})`,
      "haproxy is not installed",
    ),
    async fn() {
      const args = [
        "--proxy-protocol",
        "--trusted-proxy",
        "127.0.0.1",
        "--greeting={local} {client}{via}",
      ];
      const a = await startEchod(args);
      const b = await startEchod(args);
      const haproxy = await startHaproxy([a.port, b.port], { sendProxy, v4v6: true });
      const port = haproxy.port;
      try {
        const lines = [
          await greeted("127.0.0.1", port),
          await greeted("127.0.0.1", port),
          await greeted("::1", port),
          await greeted("::1", port),
        ];
        const backends = new Set(lines.map((l) => l.split(" ")[0]));
        assert.deepEqual(backends, new Set([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`]));
        // HAProxy's v4v6 socket sees IPv4 clients as ::ffff:127.0.0.1: named canonically.
        assert.match(lines[0], /^127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ via 127\.0\.0\.1:\d+$/);
        assert.match(lines[2], /^127\.0\.0\.1:\d+ \[::1\]:\d+ via 127\.0\.0\.1:\d+$/);
      } finally {
        await haproxy.stop();
        await a.stop();
        await b.stop();
      }
    },
  });
}
