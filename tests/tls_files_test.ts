/**
 * The TLS certificate and key files: a bad one is refused at start with one
 * line naming the file and the problem (exit 2), a certificate out of its
 * dates is warned about, and SIGHUP reloads the pair (a bad new pair is
 * refused and the old one kept). The committed fixtures of
 * tests/fixtures/tls/ need no openssl, so these run on Windows too, except
 * SIGHUP, which Windows does not have.
 */

import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { roundTrip } from "./_client.ts";
import { fixture, FIXTURES, peerCertificate } from "./_tls.ts";
import { skipUnless, startEchod } from "./_echod.ts";

const READ_FIXTURES = ["--allow-net", `--allow-read=${FIXTURES}`];

function fingerprintOf(name: string): string {
  return new X509Certificate(Deno.readTextFileSync(fixture(name))).fingerprint256;
}

Deno.test("bad TLS files are refused at start with one line naming the file (exit 2)", async () => {
  const [aCert, aKey, bKey] = [fixture("a.pem"), fixture("a.key"), fixture("b.key")];
  const garbage = fixture("garbage.pem");
  const encrypted = fixture("encrypted.key");
  const cases: [string, string, string, string][] = [
    [
      "a key that does not match the certificate",
      aCert,
      bKey,
      `--tls-key ${bKey} does not match the certificate in --tls-cert ${aCert}`,
    ],
    [
      "a garbage certificate",
      garbage,
      aKey,
      `--tls-cert ${garbage}: no PEM certificate in it (expected a -----BEGIN CERTIFICATE----- block)`,
    ],
    [
      "a garbage key",
      aCert,
      garbage,
      `--tls-key ${garbage}: no PEM private key in it (expected a -----BEGIN PRIVATE KEY----- block)`,
    ],
    [
      "certificate and key swapped",
      aKey,
      aCert,
      `--tls-cert ${aKey}: no PEM certificate in it (is it the key? the two look swapped)`,
    ],
    [
      "the key given twice",
      aKey,
      aKey,
      `--tls-cert ${aKey}: no PEM certificate in it, only a private key`,
    ],
    [
      "the certificate given twice",
      aCert,
      aCert,
      `--tls-key ${aCert}: no PEM private key in it, only a certificate`,
    ],
    [
      "a damaged certificate block",
      fixture("damaged.pem"),
      aKey,
      `--tls-cert ${
        fixture("damaged.pem")
      }: its certificate cannot be decoded (a damaged or truncated PEM block)`,
    ],
    [
      "a damaged key block",
      aCert,
      fixture("damaged.key"),
      `--tls-key ${
        fixture("damaged.key")
      }: its private key cannot be decoded (a damaged or truncated PEM block)`,
    ],
    [
      "a key under a passphrase",
      aCert,
      encrypted,
      `--tls-key ${encrypted}: the key is encrypted; echod needs it unencrypted (openssl pkey -in ${encrypted} -out key.pem)`,
    ],
    [
      "a key type Deno's TLS cannot sign with",
      fixture("ed448.pem"),
      fixture("ed448.key"),
      `--tls-key ${
        fixture("ed448.key")
      }: echod cannot serve TLS with a key of type ed448; use RSA, ECDSA (P-256, P-384 or P-521) or Ed25519`,
    ],
  ];
  for (const [what, cert, key, message] of cases) {
    const echod = await startEchod(["--tls-cert", cert, "--tls-key", key], {
      permissions: READ_FIXTURES,
      waitReady: false,
    });
    // Resolves false as soon as echod exits without listening.
    const listening = await echod.waitForMessage("listening on").then(() => true, () => false);
    if (listening) await echod.stop();
    const { code } = await echod.exited();
    assert.equal(listening, false, `${what}: echod started listening`);
    assert.deepEqual(echod.otherLines, [`echod: ${message}`], what);
    assert.equal(code, 2, what);
  }
});

Deno.test("a certificate out of its dates is warned about with its dates, and served", async () => {
  const cases = [
    [
      "expired.pem",
      "has expired (valid from 2000-01-01T00:00:00.000Z to 2001-01-01T00:00:00.000Z): clients will refuse it",
    ],
    [
      "future.pem",
      "is not valid yet (valid from 2100-01-01T00:00:00.000Z to 2101-01-01T00:00:00.000Z): clients will refuse it until then",
    ],
  ];
  for (const [name, problem] of cases) {
    const echod = await startEchod(
      ["--tls-cert", fixture(name), "--tls-key", fixture("a.key")],
      { permissions: READ_FIXTURES },
    );
    try {
      const warning = await echod.waitForMessage("the certificate in --tls-cert");
      assert.equal(warning.level, "WARNING");
      assert.equal(warning.message, `the certificate in --tls-cert ${fixture(name)} ${problem}`);
      // Start went on, and the certificate is what a client is shown.
      const seen = await peerCertificate(echod.port, { verify: false });
      assert.equal(seen.fingerprint, fingerprintOf(name));
    } finally {
      await echod.stop();
    }
  }
});

const NO_SIGHUP = skipUnless(
  Deno.build.os !== "windows",
  "the TLS reload tests",
  "Windows has no SIGHUP",
);

Deno.test({
  name:
    "SIGHUP reloads a rotated certificate and key: new connections get B, an open one echoes on; a bad pair is refused and B kept; an expired one is taken with a warning",
  ignore: NO_SIGHUP,
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
