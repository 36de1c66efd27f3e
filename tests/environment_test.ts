/**
 * Configuration from `ECHOD_*` variables, as containers and Kubernetes
 * give it: every serve option, lists comma-separated, a flag winning over
 * its variable, bad values named by variable, nothing read (and no prompt)
 * without --allow-env; and `{env:NAME}` in the greeting.
 */

import assert from "node:assert/strict";
import { closedByPeer, closeQuietly, connect, roundTrip } from "./_client.ts";
import { runEchod, startEchod } from "./_echod.ts";
import { readLine } from "../lib/net.ts";

const ENV = ["--allow-net", "--allow-env"];

Deno.test("ECHOD_* variables configure serve: host, ports as a list, limits, greeting with {env:NAME}", async () => {
  const echod = await startEchod([], {
    permissions: ENV,
    noPortFlag: true,
    env: {
      ECHOD_HOST: "127.0.0.1",
      ECHOD_PORT: "0, 0",
      ECHOD_MAX_CONNS: "1",
      ECHOD_IDLE_TIMEOUT: "30s",
      ECHOD_GREETING: "pod={env:POD_NAME} ns={env:POD_NAMESPACE} you={client}",
      POD_NAME: "echod-7c9f8d-x2k4q",
      POD_NAMESPACE: "tests",
    },
  });
  try {
    const ready = echod.ready!;
    assert.equal(ready.maxConns, 1);
    assert.equal(ready.idleTimeoutMs, 30_000);
    const ports = ready.ports as number[];
    assert.equal(ports.length, 2, "ECHOD_PORT=0,0 serves two ports");
    assert.deepEqual(
      (ready.addresses as string).split(", ").sort(),
      ports.map((p) => `127.0.0.1:${p}`).sort(),
    );
    const conn = await connect("127.0.0.1", ports[1]);
    const { line } = await readLine(conn);
    assert.match(line, /^pod=echod-7c9f8d-x2k4q ns=tests you=127\.0\.0\.1:\d+$/);
    assert.equal(await roundTrip(conn, "through env"), "through env");
    // ECHOD_MAX_CONNS=1: a second connection is refused while the first is open.
    const second = await connect("127.0.0.1", ports[0]);
    assert.ok(await closedByPeer(second), "the second connection is closed at once");
    closeQuietly(second);
    closeQuietly(conn);
  } finally {
    await echod.stop();
  }
});

Deno.test("a flag wins over its ECHOD_* variable", async () => {
  const echod = await startEchod(["--max-conns", "5"], {
    permissions: ENV,
    env: { ECHOD_MAX_CONNS: "1", ECHOD_PORT: "1" },
  });
  try {
    assert.equal(echod.ready!.maxConns, 5);
    assert.notEqual(echod.port, 1, "--port 0 (from the test) wins over ECHOD_PORT=1");
  } finally {
    await echod.stop();
  }
});

const BAD_VARIABLES: [Record<string, string>, string][] = [
  [{ ECHOD_MAX_CONNS: "ten" }, "ECHOD_MAX_CONNS 'ten' is not a whole number; 0 means no limit"],
  [{ ECHOD_PORT: "99999" }, "ECHOD_PORT 99999 is out of range (0-65535)"],
  [{ ECHOD_HOST: "localhost" }, "ECHOD_HOST localhost is not an IP address"],
  [{ ECHOD_IDLE_TIMEOUT: "5" }, "ECHOD_IDLE_TIMEOUT '5' is not a duration (a number needs a unit"],
  [{ ECHOD_LOG_LEVEL: "warn" }, "ECHOD_LOG_LEVEL 'warn' is not one of error, warning, info, debug"],
  [{ ECHOD_UDP: "maybe" }, "ECHOD_UDP 'maybe' is not true or false"],
  [{ ECHOD_ALLOW: "10.0.0.0/33" }, "ECHOD_ALLOW 10.0.0.0/33 is not an address or CIDR block"],
  [{ ECHOD_GREETING: "{nope}" }, "ECHOD_GREETING has an unknown placeholder {nope}"],
  [{ ECHOD_GREETING: "a\nb" }, "ECHOD_GREETING must be one line"],
  [{ ECHOD_UDP_RATE: "5" }, "ECHOD_UDP_RATE needs --udp"],
  [
    { ECHOD_PORT: "tcp://10.96.0.12:40007" },
    "ECHOD_PORT='tcp://10.96.0.12:40007' is a Kubernetes service link, not an echod value: " +
    "set enableServiceLinks: false in the pod spec",
  ],
];

for (const [env, message] of BAD_VARIABLES) {
  Deno.test(`${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ")} → exit 2: ${message}`, async () => {
    const { code, stdout, stderr } = await runEchod([], ENV, { env });
    assert.equal(code, 2, stderr);
    assert.equal(stdout, "");
    assert.equal(stderr.split("\n").length, 2, stderr);
    assert.ok(stderr.startsWith(`echod: ${message}`), stderr);
  });
}

Deno.test("yes/no variables: ECHOD_UDP=false leaves UDP off, ECHOD_UDP=true turns it on", async () => {
  for (const [value, udp] of [["false", false], ["true", true], ["0", false], ["on", true]]) {
    const echod = await startEchod([], { permissions: ENV, env: { ECHOD_UDP: String(value) } });
    try {
      assert.equal(echod.ready!.message.includes("UDP on"), udp, `ECHOD_UDP=${value}`);
    } finally {
      await echod.stop();
    }
  }
});

Deno.test("without --allow-env no variable is read and nothing prompts; debug says so once", async () => {
  const echod = await startEchod(["--log-level", "debug"], {
    env: { ECHOD_MAX_CONNS: "ten", ECHOD_HOST: "not-an-address" },
  });
  try {
    assert.notEqual(echod.ready!.maxConns, "ten");
    const notes = echod.records.filter((r) => r.message.includes("ECHOD_* variables not read"));
    assert.equal(notes.length, 1, JSON.stringify(notes));
    assert.equal(notes[0].level, "DEBUG");
    assert.match(notes[0].message, /no --allow-env/);
    assert.deepEqual(echod.otherLines, []);
  } finally {
    await echod.stop();
  }
});

Deno.test("an ECHOD_ variable that names no option is warned about with the near one", async () => {
  const echod = await startEchod([], { permissions: ENV, env: { ECHOD_MAX_CON: "5" } });
  try {
    const warning = await echod.waitForMessage("ECHOD_MAX_CON is not an echod setting");
    assert.equal(warning.level, "WARNING");
    assert.match(warning.message, /did you mean ECHOD_MAX_CONNS\?/);
  } finally {
    await echod.stop();
  }
});

Deno.test("{env:NAME} values stay one line: control characters become ?, unset reads as -", async () => {
  const echod = await startEchod(["--greeting=[{env:POD_NAME}] [{env:ECHOD_UNSET_FOR_TEST}]"], {
    permissions: ["--allow-net", "--allow-env=POD_NAME,ECHOD_UNSET_FOR_TEST"],
    env: { POD_NAME: "a\r\nb\x1b[31mc\u2028d" },
  });
  try {
    const conn = await connect("127.0.0.1", echod.port);
    assert.equal((await readLine(conn)).line, "[a??b?[31mc?d] [-]");
    closeQuietly(conn);
  } finally {
    await echod.stop();
  }
});
