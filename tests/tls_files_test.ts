/**
 * The TLS certificate and key files: a bad one is refused at start with one
 * line naming the file and the problem (exit 2), a certificate out of its
 * dates is warned about. The committed fixtures of tests/fixtures/tls/ need
 * no openssl, so these run on Windows too. (SIGHUP's reload of the pair:
 * `posix/tls_reload_test.ts`.)
 */

import assert from "node:assert/strict";
import { fingerprintOf, fixture, FIXTURES, peerCertificate } from "./_tls.ts";
import { startEchod } from "./_echod.ts";

const READ_FIXTURES = ["--allow-net", `--allow-read=${FIXTURES}`];

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
