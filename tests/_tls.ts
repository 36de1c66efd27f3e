/**
 * Test certificates: a CA and a server certificate it signs for localhost,
 * 127.0.0.1 and ::1, made with openssl into a temporary folder. Made once,
 * on first use; where openssl is missing, `reason` says so for the skip.
 * Beside them, the committed fixtures of `tests/fixtures/tls/` (pairs A and
 * B, expired, not yet valid, bad files), usable where openssl is not, and a
 * client that reports the certificate a server presents.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { connect as connectNodeTls } from "node:tls";
import { ROOT } from "./_echod.ts";
import { has } from "./_programs.ts";

/** Paths of the test CA and server certificate and key. */
export interface TestCertificates {
  /** The CA certificate (PEM path), for clients. */
  ca: string;
  /** The server certificate (PEM path). */
  cert: string;
  /** The server key (PEM path). */
  key: string;
  /** Deno flags that let echod read `cert` and `key`. */
  permissions: string[];
}

/** Whether openssl is installed (looked up on PATH, not started). */
export const HAS_OPENSSL: boolean = has("openssl");

if (!HAS_OPENSSL) console.log("skipping the TLS tests: openssl is not installed");

let made: Promise<TestCertificates> | undefined;

/** The test certificates (made on the first call). */
export function testCertificates(): Promise<TestCertificates> {
  return made ??= make();
}

async function make(): Promise<TestCertificates> {
  const dir = await Deno.makeTempDir({ prefix: "echod-tls-" });
  addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const steps = [
    ["req", "-x509", ...ec, "-days", "1", "-subj", "/CN=echod test CA"]
      .concat(["-keyout", "ca.key", "-out", "ca.pem"]),
    ["req", ...ec, "-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "server.csr"],
    ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"]
      .concat(["-days", "1", "-extfile", "server.ext", "-out", "cert.pem"]),
  ];
  await Deno.writeTextFile(
    `${dir}/server.ext`,
    "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" +
      "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n",
  );
  for (const args of steps) {
    const output = await new Deno.Command("openssl", { args, cwd: dir }).output();
    assert.ok(output.success, new TextDecoder().decode(output.stderr));
  }
  const cert = `${dir}/cert.pem`;
  const key = `${dir}/key.pem`;
  return {
    ca: `${dir}/ca.pem`,
    cert,
    key,
    permissions: ["--allow-net", `--allow-read=${cert},${key}`],
  };
}

/** Connects with TLS, trusting the test CA. */
export async function connectTls(hostname: string, port: number): Promise<Deno.TlsConn> {
  const { ca } = await testCertificates();
  return await Deno.connectTls({ hostname, port, caCerts: [await Deno.readTextFile(ca)] });
}

/** The committed TLS fixtures (made by `tests/fixtures/tls/make.sh`; see its list). */
export const FIXTURES: string = join(ROOT, "tests", "fixtures", "tls");

/** The path of one TLS fixture, e.g. `fixture("a.pem")`. */
export function fixture(name: string): string {
  return join(FIXTURES, name);
}

/** What a TLS client sees of the certificate a server presents. */
export interface PeerCertificate {
  /** Its subject's common name. */
  name: string;
  /** Its SHA-256 fingerprint, as `AB:CD:…`. */
  fingerprint: string;
}

/**
 * Completes a TLS handshake with 127.0.0.1:`port` (node:tls) and returns the
 * certificate the server presented; the connection is then closed. It is
 * verified against the fixtures' CA unless `verify` is false (to see an
 * expired or not-yet-valid certificate).
 */
export async function peerCertificate(
  port: number,
  options: { verify?: boolean } = {},
): Promise<PeerCertificate> {
  const ca = await Deno.readTextFile(fixture("ca.pem"));
  return await new Promise((resolve, reject) => {
    const socket = connectNodeTls({
      host: "127.0.0.1",
      port,
      ca,
      servername: "localhost",
      rejectUnauthorized: options.verify ?? true,
    }, () => {
      const certificate = socket.getPeerCertificate();
      socket.destroy();
      resolve({ name: String(certificate.subject?.CN), fingerprint: certificate.fingerprint256 });
    });
    socket.on("error", reject);
  });
}
