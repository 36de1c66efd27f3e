/**
 * TLS for the tests, from the committed fixtures of `tests/fixtures/tls/`
 * (made once by its `make.sh`, so no test needs openssl and they run on
 * Windows too): the pair echod serves by default (pair A, for localhost,
 * 127.0.0.1 and ::1), echod started with it, Deno's TLS client trusting
 * the fixtures' CA, the other fixtures (pair B, expired, not yet valid,
 * bad files) and a client that reports the certificate a server presents.
 *
 * @module
 */

import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { connect as connectNodeTls } from "node:tls";
import { type Echod, ROOT, startEchod, type StartOptions } from "./_echod.ts";

/** Paths of the test CA and server certificate and key. */
export interface TestCertificates {
  /** The CA certificate (PEM path), for clients. */
  ca: string;
  /** The server certificate (PEM path). */
  cert: string;
  /** The server key (PEM path). */
  key: string;
  /** Deno flags that let echod serve and read `cert` and `key`. */
  permissions: string[];
}

/** The committed TLS fixtures (made by `tests/fixtures/tls/make.sh`; see its list). */
export const FIXTURES: string = join(ROOT, "tests", "fixtures", "tls");

/** The path of one TLS fixture, e.g. `fixture("a.pem")`. */
export function fixture(name: string): string {
  return join(FIXTURES, name);
}

/** The SHA-256 fingerprint of a fixture certificate, as a TLS client reports it. */
export function fingerprintOf(name: string): string {
  return new X509Certificate(Deno.readTextFileSync(fixture(name))).fingerprint256;
}

/** The test certificates: the fixtures' CA and pair A (valid 2025 to 2125). */
export function testCertificates(): TestCertificates {
  const cert = fixture("a.pem");
  const key = fixture("a.key");
  return {
    ca: fixture("ca.pem"),
    cert,
    key,
    permissions: ["--allow-net", `--allow-read=${cert},${key}`],
  };
}

/**
 * Starts echod serving TLS with {@linkcode testCertificates} (`--tls-cert`,
 * `--tls-key` and read permission for them) and `args`; any
 * `options.permissions` are added to those.
 */
export function startTlsEchod(args: string[] = [], options: StartOptions = {}): Promise<Echod> {
  const { cert, key, permissions } = testCertificates();
  return startEchod(["--tls-cert", cert, "--tls-key", key, ...args], {
    ...options,
    permissions: [...new Set([...permissions, ...(options.permissions ?? [])])],
  });
}

/** Connects with TLS, trusting the test CA. */
export async function connectTls(hostname: string, port: number): Promise<Deno.TlsConn> {
  const { ca } = testCertificates();
  return await Deno.connectTls({ hostname, port, caCerts: [await Deno.readTextFile(ca)] });
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
