/**
 * Beyond plain TCP echo: TLS, UDP with its guards, Prometheus metrics,
 * access control and accept rate, and the PROXY protocol (by hand and
 * behind a real HAProxy).
 */

import assert from "node:assert/strict";
import {
  closedByPeer,
  closeQuietly,
  connect,
  readExactly,
  roundTrip,
  writeAll,
} from "./_client.ts";
import { type Echod, ROOT, runEchod, startEchod } from "./_echod.ts";
import { connectTls, HAS_OPENSSL, testCertificates } from "./_tls.ts";

// On Windows `::` is IPv6-only: IPv4 and IPv6 datagrams reach different
// sockets, so the tests that rely on one socket's ordering run elsewhere.
const ONE_UDP_SOCKET = Deno.build.os !== "windows";

function available(program: string): Promise<boolean> {
  return new Deno.Command("sh", { args: ["-c", `command -v ${program}`] }).output()
    .then((o) => o.success, () => false);
}

async function scrape(echod: Echod, path = "/metrics"): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://${echod.ready!.metricsAddress}${path}`);
  return { status: response.status, text: await response.text() };
}

function metric(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  assert.ok(line, `no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

// ---- TLS --------------------------------------------------------------

const certs = HAS_OPENSSL ? await testCertificates() : undefined;
const cert = certs?.cert ?? "cert.pem";
const key = certs?.key ?? "key.pem";
const TLS_PERMISSIONS = certs?.permissions ?? [];

async function tlsRoundTrip(host: string, port: number, text: string): Promise<string> {
  const conn = await connectTls(host, port);
  try {
    return await roundTrip(conn, text);
  } finally {
    conn.close();
  }
}

Deno.test({
  name: "TLS on --port: echo over IPv4 and IPv6 with a certificate made for the test",
  ignore: !HAS_OPENSSL,
  async fn() {
    const echod = await startEchod(["--tls-cert", cert, "--tls-key", key], {
      permissions: TLS_PERMISSIONS,
    });
    try {
      assert.match(String(echod.ready?.addresses), /\(TLS\)$/);
      assert.equal(await tlsRoundTrip("127.0.0.1", echod.port, "secret v4"), "secret v4");
      assert.equal(await tlsRoundTrip("::1", echod.port, "secret v6"), "secret v6");
    } finally {
      const { code } = await echod.stop();
      if (Deno.build.os !== "windows") assert.equal(code, 0);
    }
  },
});

Deno.test({
  name: "--tls-port serves TLS beside plain TCP on --port",
  ignore: !HAS_OPENSSL,
  async fn() {
    const echod = await startEchod(["--tls-cert", cert, "--tls-key", key, "--tls-port", "0"], {
      permissions: TLS_PERMISSIONS,
    });
    try {
      const tlsPort = echod.ready?.tlsPort as number;
      assert.ok(tlsPort > 0 && tlsPort !== echod.port);
      assert.equal(await tlsRoundTrip("127.0.0.1", tlsPort, "over TLS"), "over TLS");
      const plain = await connect("127.0.0.1", echod.port);
      assert.equal(await roundTrip(plain, "in the clear"), "in the clear");
      plain.close();
    } finally {
      await echod.stop();
    }
  },
});

Deno.test("TLS files: read permission and existence are checked with one clear line", async () => {
  const noRead = await runEchod(["--port", "0", "--tls-cert", cert, "--tls-key", key]);
  assert.equal(noRead.code, 2);
  assert.equal(
    noRead.stderr,
    `echod: serving TLS (--tls-cert, --tls-key) needs read permission: add --allow-read=${cert},${key} to the deno command\n`,
  );
  const missing = await runEchod(
    ["--port", "0", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", key],
    ["--allow-net", "--allow-read"],
  );
  assert.equal(missing.code, 1);
  assert.equal(
    missing.stderr,
    "echod: cannot read --tls-cert /nonexistent/cert.pem: no such file\n",
  );
  const half = await runEchod(["--tls-cert", cert]);
  assert.equal(half.code, 2);
  assert.equal(half.stderr, "echod: --tls-cert and --tls-key go together: give both\n");
});

// ---- UDP --------------------------------------------------------------

async function udpSocket(hostname: string, port = 0): Promise<Deno.DatagramConn> {
  return await Promise.resolve(Deno.listenDatagram({ hostname, port, transport: "udp" }));
}

Deno.test("--udp echoes datagrams over IPv4 and IPv6", async () => {
  const echod = await startEchod(["--udp", "--metrics", "127.0.0.1:0"]);
  try {
    assert.match(String(echod.ready?.message), /; UDP on \[::\]:\d+/);
    for (const host of ["127.0.0.1", "::1"]) {
      const socket = await udpSocket(host);
      const data = new TextEncoder().encode(`datagram over ${host}`);
      await socket.send(data, { transport: "udp", hostname: host, port: echod.port });
      const [echoed] = await socket.receive();
      assert.deepEqual(echoed, data);
      socket.close();
    }
    const { text } = await scrape(echod);
    assert.equal(metric(text, "echod_udp_datagrams_echoed_total"), 2);
  } finally {
    await echod.stop();
  }
});

// Binding a UDP socket to port 19 needs root (or CAP_NET_BIND_SERVICE).
let canBindChargen = false;
try {
  (await udpSocket("127.0.0.1", 19)).close();
  canBindChargen = true;
} catch {
  console.log("skipping the reflector-port test: cannot bind UDP port 19 without privilege");
}

Deno.test({
  name: "--udp does not answer a datagram from a reflector port (19, chargen)",
  ignore: !canBindChargen || !ONE_UDP_SOCKET,
  async fn() {
    const echod = await startEchod(["--udp", "--metrics", "127.0.0.1:0"]);
    const chargen = await udpSocket("127.0.0.1", 19);
    const probe = await udpSocket("127.0.0.1");
    try {
      const to = { transport: "udp" as const, hostname: "127.0.0.1", port: echod.port };
      await chargen.send(new Uint8Array([1, 2, 3]), to);
      // Datagrams on one socket are handled in order: once the probe is
      // answered, the one from port 19 has been dealt with.
      await probe.send(new Uint8Array([9]), to);
      await probe.receive();
      const { text } = await scrape(echod);
      assert.equal(metric(text, 'echod_udp_datagrams_dropped_total{reason="reflector-port"}'), 1);
      assert.equal(metric(text, "echod_udp_datagrams_echoed_total"), 1);
      const warning = await echod.waitForMessage("dropped a datagram");
      assert.equal(warning.reason, "reflector-port");
    } finally {
      chargen.close();
      probe.close();
      await echod.stop();
    }
  },
});

Deno.test({
  name: "--udp-rate cuts a flood from one source while another source is served",
  ignore: !ONE_UDP_SOCKET,
}, async () => {
  const echod = await startEchod(["--udp", "--udp-rate", "5", "--metrics", "127.0.0.1:0"]);
  const flooder = await udpSocket("127.0.0.1");
  const other = await udpSocket("::1");
  try {
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port: echod.port };
    for (let i = 0; i < 50; i++) await flooder.send(new Uint8Array([i]), to);
    // The other source is answered (its datagram goes to the same socket,
    // so the flood has been handled by the time the answer comes back).
    await other.send(new Uint8Array([42]), { ...to, hostname: "::1" });
    const [answer] = await other.receive();
    assert.deepEqual(answer, new Uint8Array([42]));
    const { text } = await scrape(echod);
    const echoed = metric(text, "echod_udp_datagrams_echoed_total") - 1;
    const dropped = metric(text, 'echod_udp_datagrams_dropped_total{reason="source-rate"}');
    assert.equal(echoed + dropped, 50);
    assert.ok(echoed >= 5 && echoed <= 7, `${echoed} of the flood answered at 5/s`);
  } finally {
    flooder.close();
    other.close();
    await echod.stop();
  }
});

// ---- Metrics ------------------------------------------------------------

Deno.test("/metrics counts exactly the traffic that flowed; /healthz answers", async () => {
  const echod = await startEchod([
    "--metrics",
    "127.0.0.1:0",
    "--max-conns",
    "2",
    "--log-level",
    "debug",
  ]);
  try {
    assert.deepEqual(await scrape(echod, "/healthz"), { status: 200, text: "ok\n" });
    assert.equal((await scrape(echod, "/nope")).status, 404);
    const before = (await scrape(echod)).text;
    assert.match(before, /^# HELP echod_connections_active /m);
    assert.match(before, /^# TYPE echod_connections_accepted_total counter$/m);
    assert.equal(metric(before, "echod_connections_accepted_total"), 0);

    const a = await connect("127.0.0.1", echod.port);
    const b = await connect("::1", echod.port);
    await writeAll(a, new Uint8Array(700));
    await readExactly(a, 700);
    await writeAll(b, new Uint8Array(300));
    await readExactly(b, 300);
    const third = await connect("127.0.0.1", echod.port);
    assert.ok(await closedByPeer(third));
    third.close();
    const during = (await scrape(echod)).text;
    assert.equal(metric(during, "echod_connections_active"), 2);
    assert.equal(metric(during, "echod_connections_accepted_total"), 3);
    assert.equal(metric(during, 'echod_connections_refused_total{reason="max-conns"}'), 1);
    assert.equal(metric(during, "echod_received_bytes_total"), 1000);
    assert.equal(metric(during, "echod_sent_bytes_total"), 1000);

    a.close();
    b.close();
    let closes = 0;
    await echod.waitFor((r) => r.message.startsWith("close ") && ++closes === 2);
    const after = (await scrape(echod)).text;
    assert.equal(metric(after, "echod_connections_active"), 0);
    assert.ok(metric(after, "echod_uptime_seconds") > 0);
  } finally {
    await echod.stop();
  }
});

// ---- Access control ------------------------------------------------------

Deno.test("--allow and --deny: CIDR blocks, IPv4-mapped peers as IPv4, deny wins", async () => {
  const cases: [string[], Record<string, boolean>][] = [
    [["--deny", "::1"], { "127.0.0.1": true, "::1": false }],
    [["--allow", "127.0.0.0/8"], { "127.0.0.1": true, "::ffff:127.0.0.1": true, "::1": false }],
    [["--allow", "127.0.0.0/8", "--deny", "127.0.0.1/32"], { "127.0.0.1": false, "::1": false }],
    [["--allow", "::1/128", "--allow", "::ffff:127.0.0.0/104"], { "127.0.0.1": true, "::1": true }],
  ];
  for (const [args, expected] of cases) {
    const echod = await startEchod([...args, "--metrics", "127.0.0.1:0"]);
    try {
      let refused = 0;
      for (const [host, admitted] of Object.entries(expected)) {
        const conn = await connect(host, echod.port);
        if (admitted) assert.equal(await roundTrip(conn, "in"), "in", `${args} ${host}`);
        else assert.ok(await closedByPeer(conn), `${args.join(" ")}: ${host} was let in`);
        if (!admitted) refused++;
        conn.close();
      }
      const { text } = await scrape(echod);
      assert.equal(metric(text, 'echod_connections_refused_total{reason="denied"}'), refused);
    } finally {
      await echod.stop();
    }
  }
});

Deno.test({ name: "--deny applies to UDP too", ignore: !ONE_UDP_SOCKET }, async () => {
  const echod = await startEchod(["--udp", "--deny", "::1", "--metrics", "127.0.0.1:0"]);
  const denied = await udpSocket("::1");
  const allowed = await udpSocket("127.0.0.1");
  try {
    await denied.send(new Uint8Array([1]), { transport: "udp", hostname: "::1", port: echod.port });
    await allowed.send(new Uint8Array([2]), {
      transport: "udp",
      hostname: "127.0.0.1",
      port: echod.port,
    });
    await allowed.receive();
    // Both went to the dual-stack socket, in order.
    const { text } = await scrape(echod);
    assert.equal(metric(text, 'echod_udp_datagrams_dropped_total{reason="denied"}'), 1);
  } finally {
    denied.close();
    allowed.close();
    await echod.stop();
  }
});

Deno.test("--accept-rate limits new connections per address, not across addresses", async () => {
  const echod = await startEchod(["--accept-rate", "3", "--metrics", "127.0.0.1:0"]);
  const open: Deno.Conn[] = [];
  try {
    let admitted = 0;
    for (let i = 0; i < 10; i++) {
      const conn = await connect("127.0.0.1", echod.port);
      try {
        if (await roundTrip(conn, "x") === "x") admitted++;
        open.push(conn);
      } catch {
        conn.close();
      }
    }
    assert.ok(admitted >= 3 && admitted <= 4, `${admitted} of 10 admitted at 3/s`);
    const v6 = await connect("::1", echod.port);
    assert.equal(await roundTrip(v6, "other address"), "other address");
    open.push(v6);
    const { text } = await scrape(echod);
    assert.equal(
      metric(text, 'echod_connections_refused_total{reason="accept-rate"}'),
      10 - admitted,
    );
  } finally {
    open.forEach(closeQuietly);
    await echod.stop();
  }
});

// ---- PROXY protocol ---------------------------------------------------------

function proxyV2(source: number[], port: number): Uint8Array {
  const signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
  const v6 = source.length === 16;
  const body = [
    ...source,
    ...new Array(source.length).fill(0), // destination
    port >> 8,
    port & 0xff,
    0x9c,
    0x47, // destination port 40007
  ];
  return new Uint8Array([...signature, 0x21, v6 ? 0x21 : 0x11, 0, body.length, ...body]);
}

Deno.test("PROXY v1 and v2 headers from a trusted proxy name the client; others are plain", async () => {
  const echod = await startEchod([
    "--proxy-protocol",
    "--trusted-proxy",
    "127.0.0.1",
    "--log-level",
    "debug",
    "--metrics",
    "127.0.0.1:0",
  ]);
  try {
    const v1 = await connect("127.0.0.1", echod.port);
    await writeAll(
      v1,
      new TextEncoder().encode("PROXY TCP4 203.0.113.7 192.0.2.1 5555 40007\r\nhello"),
    );
    assert.equal(new TextDecoder().decode(await readExactly(v1, 5)), "hello");
    assert.equal(await roundTrip(v1, " again"), " again");
    v1.close();
    await echod.waitFor((r) => r.message === "open 203.0.113.7:5555");

    const v2 = await connect("127.0.0.1", echod.port);
    const source = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    await writeAll(v2, proxyV2(source, 6666));
    assert.equal(await roundTrip(v2, "binary header"), "binary header");
    v2.close();
    await echod.waitFor((r) => r.message === "open [2001:db8::7]:6666");

    // A trusted proxy without a header is cut off and counted.
    const bare = await connect("127.0.0.1", echod.port);
    await writeAll(bare, new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
    assert.ok(await closedByPeer(bare));
    bare.close();
    // Anyone else is not expected to send a header: plain echo.
    const direct = await connect("::1", echod.port);
    assert.equal(await roundTrip(direct, "PROXY is just data here"), "PROXY is just data here");
    direct.close();
    const { text } = await scrape(echod);
    assert.equal(metric(text, 'echod_connections_refused_total{reason="proxy-header"}'), 1);
  } finally {
    await echod.stop();
  }
});

Deno.test("per-IP limits count the client named in the PROXY header, not the proxy", async () => {
  const echod = await startEchod([
    "--proxy-protocol",
    "--trusted-proxy",
    "127.0.0.0/8",
    "--max-conns-per-ip",
    "1",
  ]);
  const open: Deno.Conn[] = [];
  try {
    const via = async (client: string) => {
      const conn = await connect("127.0.0.1", echod.port);
      await writeAll(
        conn,
        new TextEncoder().encode(`PROXY TCP4 ${client} 127.0.0.1 1000 40007\r\n`),
      );
      open.push(conn);
      return conn;
    };
    assert.equal(await roundTrip(await via("198.51.100.1"), "a"), "a");
    assert.equal(await roundTrip(await via("198.51.100.2"), "b"), "b");
    assert.ok(await closedByPeer(await via("198.51.100.1")), "a second connection of one client");
  } finally {
    open.forEach(closeQuietly);
    await echod.stop();
  }
});

const hasHaproxy = await available("haproxy");
if (!hasHaproxy) console.log("skipping the HAProxy test: haproxy is not installed");

Deno.test({
  name: "behind HAProxy (send-proxy-v2, round robin): true client addresses and per-client limits",
  ignore: !hasHaproxy,
  async fn() {
    const args = ["--proxy-protocol", "--trusted-proxy", "127.0.0.1", "--max-conns-per-ip", "1"];
    const a = await startEchod([...args, "--log-level", "debug"]);
    const b = await startEchod([...args, "--log-level", "debug"]);
    const dir = await Deno.makeTempDir();
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    await Deno.writeTextFile(
      `${dir}/haproxy.cfg`,
      [
        "defaults",
        "  mode tcp",
        "  timeout connect 5s",
        "  timeout client 30s",
        "  timeout server 30s",
        "frontend echo",
        `  bind 127.0.0.1:${port}`,
        `  bind [::1]:${port}`,
        "  default_backend echods",
        "backend echods",
        "  balance roundrobin",
        `  server a 127.0.0.1:${a.port} send-proxy-v2`,
        `  server b 127.0.0.1:${b.port} send-proxy-v2`,
        "",
      ].join("\n"),
    );
    const haproxy = new Deno.Command("haproxy", {
      args: ["-db", "-f", `${dir}/haproxy.cfg`],
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const open: Deno.Conn[] = [];
    try {
      // Ready when its frontend accepts (HAProxy prints nothing on start).
      for (let tries = 0;; tries++) {
        try {
          (await connect("127.0.0.1", port)).close();
          break;
        } catch (error) {
          if (tries > 200) throw error;
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      // Four clients from ::1, spread over both backends: each backend
      // admits one (the limit is one per client address) and refuses the rest.
      const fromV6: boolean[] = [];
      for (let i = 0; i < 4; i++) {
        const conn = await connect("::1", port);
        open.push(conn);
        try {
          fromV6.push(await roundTrip(conn, `v6 ${i}`) === `v6 ${i}`);
        } catch {
          fromV6.push(false);
        }
      }
      assert.equal(fromV6.filter((ok) => ok).length, 2, String(fromV6));
      // HAProxy itself connects from 127.0.0.1; a client from 127.0.0.1 is
      // a different client from ::1 and is admitted.
      const fromV4 = await connect("127.0.0.1", port);
      open.push(fromV4);
      assert.equal(await roundTrip(fromV4, "v4 client"), "v4 client");
      for (const echod of [a, b]) {
        const opened = echod.records.filter((r) => r.message.startsWith("open "));
        const v6 = opened.filter((r) => /^open \[::1\]:\d+$/.test(r.message));
        assert.equal(v6.length, 1, "each backend admits one ::1 client, seen as ::1");
        assert.ok(
          !opened.some((r) => r.message === `open 127.0.0.1:${port}`),
          "the proxy's address was taken for the client's",
        );
      }
    } finally {
      open.forEach(closeQuietly);
      haproxy.kill("SIGTERM");
      await haproxy.output();
      await a.stop();
      await b.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
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
