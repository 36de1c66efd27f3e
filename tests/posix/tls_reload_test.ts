/**
 * SIGHUP reloads the TLS certificate and key: new handshakes get the new
 * pair, open connections are untouched, a bad new pair is refused and the
 * old one kept. POSIX only: Windows has no SIGHUP (the Windows lane leaves
 * this folder out).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { roundTrip } from "../_client.ts";
import { fingerprintOf, fixture, peerCertificate } from "../_tls.ts";
import { startEchod } from "../_echod.ts";

Deno.test({
  name:
    "SIGHUP reloads a rotated certificate and key: new connections get B, an open one echoes on; a bad pair is refused and B kept; an expired one is taken with a warning",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "echod-tls-reload-" });
    const cert = join(dir, "cert.pem");
    const key = join(dir, "key.pem");
    const install = async (certFrom: string, keyFrom: string) => {
      await Deno.copyFile(fixture(certFrom), cert);
      await Deno.copyFile(fixture(keyFrom), key);
    };
    await install("a.pem", "a.key");
    const echod = await startEchod(["--tls-cert", cert, "--tls-key", key], {
      permissions: ["--allow-net", `--allow-read=${cert},${key}`],
    });
    let old: Deno.TlsConn | undefined;
    try {
      assert.equal((await peerCertificate(echod.port)).fingerprint, fingerprintOf("a.pem"));
      old = await Deno.connectTls({
        hostname: "127.0.0.1",
        port: echod.port,
        caCerts: [await Deno.readTextFile(fixture("ca.pem"))],
      });
      assert.equal(await roundTrip(old, "before"), "before");

      await install("b.pem", "b.key");
      echod.kill("SIGHUP");
      const reloaded = await echod.waitForMessage("received SIGHUP: reloaded");
      assert.equal(reloaded.level, "INFO");
      assert.equal(reloaded.fingerprint, fingerprintOf("b.pem"));
      assert.equal(
        reloaded.message,
        `received SIGHUP: reloaded --tls-cert ${cert} and --tls-key ${key}: CN=echod test B, valid until 2125-01-01T00:00:00.000Z`,
      );
      const seen = await peerCertificate(echod.port);
      assert.deepEqual(seen, { name: "echod test B", fingerprint: fingerprintOf("b.pem") });
      assert.equal(await roundTrip(old, "after"), "after", "the open connection echoes on");

      // A bad new pair: B's certificate with A's key. Refused, B kept.
      await install("b.pem", "a.key");
      echod.kill("SIGHUP");
      const refused = await echod.waitForMessage("received SIGHUP: kept");
      assert.equal(refused.level, "ERROR");
      assert.equal(
        refused.message,
        `received SIGHUP: kept the TLS certificate in use: --tls-key ${key} does not match the certificate in --tls-cert ${cert}`,
      );
      assert.equal((await peerCertificate(echod.port)).fingerprint, fingerprintOf("b.pem"));

      // A pair that cannot be read: refused with the reason, B kept.
      await Deno.remove(cert);
      echod.kill("SIGHUP");
      await echod.waitFor((r) =>
        r.message ===
          `received SIGHUP: kept the TLS certificate in use: cannot read --tls-cert ${cert}: no such file`
      );
      assert.equal((await peerCertificate(echod.port)).fingerprint, fingerprintOf("b.pem"));
      assert.equal(await roundTrip(old, "still"), "still");

      // An expired pair is taken, with the warning it gets at start.
      await install("expired.pem", "a.key");
      echod.kill("SIGHUP");
      await echod.waitFor((r) =>
        r.message.startsWith("received SIGHUP: reloaded") &&
        r.fingerprint === fingerprintOf("expired.pem")
      );
      const warning = await echod.waitForMessage(
        `the certificate in --tls-cert ${cert} has expired`,
      );
      assert.equal(warning.level, "WARNING");
    } finally {
      old?.close();
      assert.equal((await echod.stop()).code, 0);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
