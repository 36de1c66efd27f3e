/**
 * The command line: every bad input gives one line on stderr and the right
 * exit code, through the real process; parsing details in-process.
 */

import assert from "node:assert/strict";
import { parseCommandLine } from "../lib/cli/mod.ts";
import { UsageError } from "../lib/errors.ts";
import { DUAL_STACK, ROOT, runEchod, skipUnless, startEchod } from "./_echod.ts";
import { DENO_FLAGS, has } from "./_programs.ts";

const BAD_INPUTS: [string[], string][] = [
  [
    ["--port", "7001", "--fault", "7001:latency=fast"],
    "--fault 7001:latency=fast: latency takes a duration such as 50ms",
  ],
  [["--fault", "latncy=5ms"], "--fault latncy=5ms: unknown key latncy: did you mean latency?"],
  [["--port", "7001", "--fault", "7002:refuse"], "--fault 7002:refuse: port 7002 is not served"],
  [
    ["--fault", "refuse,blackhole"],
    "--fault refuse,blackhole: refuse and blackhole contradict: refuse resets, blackhole keeps open",
  ],
  [["--fault", "drop=0.5"], "--fault drop=0.5: drop, duplicate and delay act on UDP: add --udp"],
  [["--prot", "5"], "unknown option --prot: did you mean --port?"],
  [["--max-con", "5"], "unknown option --max-con: did you mean --max-conns?"],
  [["--frobnicate"], "unknown option --frobnicate"],
  [["-x"], "unknown option -x"],
  [["--port", "70000"], "port 70000 is out of range (0-65535)"],
  [["--port", "-1"], "port -1 is out of range (0-65535)"],
  [["--port", "http"], "port 'http' is not a number: use 0-65535"],
  [["--port"], "--port needs a value (--port PORT)"],
  [
    ["--idle-timeout", "30"],
    "--idle-timeout '30' is not a duration (a number needs a unit: 30s?): use e.g. 500ms, 30s, 10m, 1h, or 0",
  ],
  [
    ["--max-lifetime", "1d"],
    "--max-lifetime '1d' is not a duration: use e.g. 500ms, 30s, 10m, 1h, or 0",
  ],
  [
    ["--drain-timeout", "-5s"],
    "--drain-timeout must not be negative (got -5s)",
  ],
  [["--max-conns", "-5"], "--max-conns must not be negative (got -5)"],
  [
    ["--max-conns=-5"],
    "--max-conns must not be negative (got -5); 0 means no limit",
  ],
  [
    ["--max-conns-per-ip", "ten"],
    "--max-conns-per-ip 'ten' is not a whole number; 0 means no limit",
  ],
  [
    ["--host", "localhost"],
    "--host localhost is not an IP address: use e.g. 127.0.0.1, ::1, 0.0.0.0 or ::",
  ],
  [
    ["--host", "300.1.1.1"],
    "--host 300.1.1.1 is not an IP address: use e.g. 127.0.0.1, ::1, 0.0.0.0 or ::",
  ],
  [["--host", "::1", "--host", "[::1]"], "--host ::1 and --host [::1] are the same address (::1)"],
  [
    ["--host", "::1", "--host", "0:0:0:0:0:0:0:1"],
    "--host ::1 and --host 0:0:0:0:0:0:0:1 are the same address (::1): give it once",
  ],
  [
    ["--host", "::ffff:127.0.0.1", "--host", "127.0.0.1"],
    "--host ::ffff:127.0.0.1 and --host 127.0.0.1 are the same address (127.0.0.1): give it once",
  ],
  [
    ["--host", "0.0.0.0", "--host", "127.0.0.1"],
    "--host 0.0.0.0 already covers --host 127.0.0.1: leave out one of them",
  ],
  [["--port", "-0"], "port -0 is out of range (0-65535)"],
  [["--stats-interval", "1000h"], "--stats-interval 1000h is out of range (0, or 100ms to 596h)"],
  [["--stats-interval", "10ms"], "--stats-interval 10ms is out of range (0, or 100ms to 596h)"],
  [["--drain-timeout", "1000h"], "--drain-timeout 1000h is out of range (0, or 1ms to 596h)"],
  [["--idle-timeout", "0.0001ms"], "--idle-timeout 0.0001ms is out of range (0, or 1ms to 596h)"],
  [["--max-lifetime", "597h"], "--max-lifetime 597h is out of range (0, or 1ms to 596h)"],
  [
    ["--log-level", "verbose"],
    "--log-level 'verbose' is not one of error, warning, info, debug",
  ],
  [
    ["--log-level", "warn"],
    "--log-level 'warn' is not one of error, warning, info, debug: did you mean warning?",
  ],
  [["--log-format", "yaml"], "--log-format 'yaml' is not one of text, json"],
  [["--help=yes"], "--help takes no value"],
  [["srve"], "unknown command 'srve': did you mean serve?"],
  [
    ["frobnicate"],
    "unknown command 'frobnicate': commands are serve, client, bench, service, help",
  ],
  [["serve", "extra"], "unexpected argument 'extra': options start with --"],
  [["--port="], "port '' is not a number: use 0-65535"],
  [["--port", "1e3"], "port '1e3' is not a number: use 0-65535"],
  [["--max-conns", "1e3"], "--max-conns '1e3' is not a whole number; 0 means no limit"],
  [
    ["--max-conns", "99999999999999999999"],
    "--max-conns '99999999999999999999' is not a whole number; 0 means no limit",
  ],
  [
    ["--drain-timeout", "1.5.5s"],
    "--drain-timeout '1.5.5s' is not a duration: use e.g. 500ms, 30s, 10m, 1h, or 0",
  ],
  [
    ["--idle-timeout", "5 m"],
    "--idle-timeout '5 m' is not a duration: use e.g. 500ms, 30s, 10m, 1h, or 0",
  ],
  [
    ["--host", "1.2.3.4.5"],
    "--host 1.2.3.4.5 is not an IP address: use e.g. 127.0.0.1, ::1, 0.0.0.0 or ::",
  ],
  [["--host", "[::1"], "--host [::1 is not an IP address: use e.g. 127.0.0.1, ::1, 0.0.0.0 or ::"],
  [["--log-file="], "--log-file needs a path"],
  [["--workers", "0"], "--workers must be at least 1 (got 0)"],
  [["--version=1"], "--version takes no value"],
  [["-p"], "--port needs a value (--port PORT)"],
  // A greeting is one line, and names only its own placeholders.
  [
    ["--greeting=hello\nworld"],
    "--greeting must be one line, but the template has a line feed in it",
  ],
  [
    ["--greeting=hello\rworld"],
    "--greeting must be one line, but the template has a carriage return",
  ],
  [["--greeting={constructor}"], "--greeting has an unknown placeholder {constructor}"],
  [["--greeting={toString}"], "--greeting has an unknown placeholder {toString}"],
  [["--greeting={__proto__}"], "--greeting has an unknown placeholder {__proto__}"],
  [["--greeting={env:}"], "--greeting has an unknown placeholder {env:}"],
  [["--greeting={env:A-B}"], "--greeting has an unknown placeholder {env:A-B}"],
  [
    ["--greeting={env:POD_NAME}"],
    "--greeting with {env:POD_NAME} needs env permission: add --allow-env=POD_NAME",
  ],
  // Ports echod would bind twice itself: usage errors naming both options.
  [
    ["--port", "7101", "--metrics", "7101"],
    "--metrics 127.0.0.1:7101 uses the port of --port 7101: give the metrics a port of their own",
  ],
  [
    ["--port", "7101", "--port", "7102", "--metrics", "0.0.0.0:7102"],
    "--metrics 0.0.0.0:7102 uses the port of --port 7102",
  ],
  [
    [
      "--port",
      "7101",
      "--port",
      "7102",
      "--tls-cert",
      "c.pem",
      "--tls-key",
      "k.pem",
      "--tls-port",
      "7102",
    ],
    "--tls-port 7102 is also given as --port 7102: TLS needs a port of its own",
  ],
  [
    [
      "--port",
      "7101",
      "--tls-cert",
      "c.pem",
      "--tls-key",
      "k.pem",
      "--tls-port",
      "7102",
      "--metrics",
      "7102",
    ],
    "--metrics 127.0.0.1:7102 uses the port of --tls-port 7102",
  ],
  [
    ["--shutdown-delay", "5"],
    "--shutdown-delay '5' is not a duration (a number needs a unit: 5s?)",
  ],
];

for (const [args, message] of BAD_INPUTS) {
  Deno.test(`echod ${args.join(" ")} → exit 2: ${message}`, async () => {
    const { code, stdout, stderr } = await runEchod(args);
    assert.equal(code, 2);
    assert.equal(stdout, "");
    // One line, the message, no stack trace.
    assert.equal(stderr.split("\n").length, 2, stderr);
    assert.ok(stderr.startsWith(`echod: ${message}`), stderr);
  });
}

Deno.test("a port already in use → exit 1 with one line", async () => {
  const first = await startEchod();
  try {
    const { code, stderr } = await runEchod(["--port", String(first.port)]);
    assert.equal(code, 1);
    assert.equal(
      stderr,
      `echod: port ${first.port} is already in use ([::]:${first.port}): stop the program using it or choose another --port\n`,
    );
  } finally {
    await first.stop();
  }
});

Deno.test("--host 0.0.0.0 --host :: (either order) binds every address as the default does", async () => {
  for (const hosts of [["0.0.0.0", "::"], ["::", "0.0.0.0"]]) {
    const echod = await startEchod(hosts.flatMap((h) => ["--host", h]));
    try {
      const expected = Deno.build.os === "windows" ? "two-listeners" : "dual-stack";
      assert.equal(echod.ready?.mode, expected, hosts.join(" "));
    } finally {
      await echod.stop();
    }
  }
});

// Windows' `::` is IPv6-only, so there `::` and 127.0.0.1 do not overlap.
Deno.test({
  name: "--host :: with an IPv4 address on a dual-stack host: exit 2, named as an overlap",
  ignore: skipUnless(
    DUAL_STACK,
    "the dual-stack overlap test",
    "Windows' :: is IPv6-only, so :: and an IPv4 address do not overlap",
  ),
  async fn() {
    for (const hosts of [["::", "127.0.0.1"], ["127.0.0.1", "::"]]) {
      const { code, stderr } = await runEchod([
        "--port",
        "0",
        ...hosts.flatMap((h) => ["--host", h]),
      ]);
      assert.equal(code, 2);
      assert.equal(
        stderr,
        "echod: --host :: also takes IPv4 on this host (dual-stack), so it overlaps --host 127.0.0.1: leave out one of them\n",
      );
    }
  },
});

// As root, the child drops CAP_NET_BIND_SERVICE through setpriv; as another
// user the OS refuses by itself.
const isRoot = Deno.uid() === 0;
const hasSetpriv = has("setpriv");
// Only Linux reserves ports below 1024 (macOS and Windows let anyone bind them).
const noPrivilegeDrop = Deno.build.os !== "linux" || (isRoot && !hasSetpriv);
if (noPrivilegeDrop) {
  console.log(
    Deno.build.os !== "linux"
      ? `skipping the privileged-port test: ${Deno.build.os} does not reserve ports below 1024`
      : "skipping the privileged-port test: running as root without setpriv (util-linux)",
  );
}

Deno.test({
  name: "a port below 1024 without privilege → exit 1 with one line",
  ignore: noPrivilegeDrop,
  async fn() {
    const prefix = isRoot
      ? ["setpriv", "--inh-caps=-net_bind_service", "--bounding-set=-net_bind_service"]
      : [];
    const [program, ...rest] = [...prefix, Deno.execPath()];
    const output = await new Deno.Command(program, {
      args: [...rest, "run", ...DENO_FLAGS, "--allow-net", "--no-prompt", "main.ts", "--port", "7"],
      cwd: ROOT,
    }).output();
    assert.equal(output.code, 1);
    assert.equal(
      new TextDecoder().decode(output.stderr),
      "echod: the OS denied listening on [::]:7: ports below 1024 need root or CAP_NET_BIND_SERVICE; choose --port 1024 or above\n",
    );
  },
});

Deno.test("parseCommandLine: defaults, serve keyword, durations, repeated hosts", () => {
  const plain = parseCommandLine([]);
  assert.equal(plain.kind, "serve");
  if (plain.kind !== "serve") return;
  assert.deepEqual(plain.config.server, {
    hosts: [],
    port: 40007,
    ports: undefined,
    greeting: undefined,
    access: undefined,
    acceptRate: 0,
    proxyProtocol: undefined,
    maxConns: 10_000,
    maxConnsPerIp: 64,
    idleTimeout: 300_000,
    maxLifetime: 3_600_000,
  });
  assert.equal(plain.config.drainTimeout, 10_000);
  assert.equal(plain.config.statsInterval, 60_000);
  assert.deepEqual(plain.config.log, {
    level: "info",
    format: "text",
    file: undefined,
  });

  const full = parseCommandLine([
    "serve",
    "--host=::1",
    "--host",
    "[fe80::1]",
    "-p",
    "0",
    "--idle-timeout",
    "500ms",
    "--max-lifetime",
    "1.5h",
    "--max-conns",
    "0",
    "--log-level",
    "debug",
  ]);
  assert.equal(full.kind, "serve");
  if (full.kind !== "serve") return;
  assert.deepEqual(full.config.server.hosts, ["::1", "fe80::1"]);
  assert.equal(full.config.server.port, 0);
  assert.equal(full.config.server.idleTimeout, 500);
  assert.equal(full.config.server.maxLifetime, 5_400_000);
  assert.equal(full.config.server.maxConns, 0);
  assert.equal(full.config.log.level, "debug");
});

Deno.test("parseCommandLine: --help and --version win over other options", () => {
  assert.equal(parseCommandLine(["--port", "1", "--help"]).kind, "help");
  assert.equal(parseCommandLine(["help"]).kind, "help");
  assert.deepEqual(parseCommandLine(["-V"]), { kind: "version" });
  assert.throws(() => parseCommandLine(["--nope", "--help"]), UsageError);
});

Deno.test("option errors of the extras: one line each", async () => {
  for (
    const [args, message] of [
      [
        ["--allow", "10.0.0.0/33"],
        "--allow 10.0.0.0/33 is not an address or CIDR block (e.g. 192.0.2.0/24, 2001:db8::/32)",
      ],
      [
        ["--proxy-protocol"],
        "--proxy-protocol needs at least one --trusted-proxy CIDR (your load balancers' addresses)",
      ],
      [["--trusted-proxy", "10.0.0.1"], "--trusted-proxy needs --proxy-protocol"],
      [["--udp-rate", "5"], "--udp-rate needs --udp"],
      [["--tls-port", "443"], "--tls-port needs --tls-cert and --tls-key"],
      [["--metrics", "localhost:9100"], "--metrics localhost:9100: localhost is not an IP address"],
      [["--accept-rate", "-1"], "--accept-rate must not be negative (got -1); 0 means no limit"],
    ] as [string[], string][]
  ) {
    const { code, stderr } = await runEchod(args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(stderr, `echod: ${message}\n`);
  }
});
