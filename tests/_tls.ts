/**
 * Test certificates: a CA and a server certificate it signs for localhost,
 * 127.0.0.1 and ::1, made with openssl into a temporary folder. Made once,
 * on first use; where openssl is missing, `reason` says so for the skip.
 *
 * @module
 */

import assert from "node:assert/strict";
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
