/**
 * TLS: echo on --port or on --tls-port, and its files' permission and
 * existence checked with one clear line.
 */

import assert from "node:assert/strict";
import { connect, roundTrip } from "./_client.ts";
import { runEchod } from "./_echod.ts";
import { connectTls, startTlsEchod, testCertificates } from "./_tls.ts";

const { cert, key } = testCertificates();

async function tlsRoundTrip(host: string, port: number, text: string): Promise<string> {
  const conn = await connectTls(host, port);
  try {
    return await roundTrip(conn, text);
  } finally {
    conn.close();
  }
}

Deno.test({
  name: "TLS on --port: echo over IPv4 and IPv6 with the test certificate",
  async fn() {
    const echod = await startTlsEchod();
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
  async fn() {
    const echod = await startTlsEchod(["--tls-port", "0"]);
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
