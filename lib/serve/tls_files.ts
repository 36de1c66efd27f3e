/**
 * The certificate and key echod serves TLS with: read from their files and
 * checked, so that a bad pair is refused with one line naming the file and
 * the problem (Node's `createSecureContext` in Deno accepts anything, and
 * every handshake would then fail), warned about when out of its dates, and
 * reloaded on SIGHUP.
 *
 * @module
 */

import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import { RuntimeError, UsageError } from "../errors.ts";
import { getLog } from "../log.ts";
import { requirePermission } from "../permissions.ts";

/** The files given with `--tls-cert` and `--tls-key`. */
export interface TlsPaths {
  /** The PEM certificate chain, server certificate first. */
  certFile: string;
  /** The PEM private key. */
  keyFile: string;
}

/** A pair that passed every check. */
interface Loaded {
  context: SecureContext;
  certificate: X509Certificate;
}

/** One `-----BEGIN LABEL-----` … `-----END LABEL-----` block. */
interface PemBlock {
  label: string;
  text: string;
}

// The keys Deno's TLS (rustls) signs with: with any other, every handshake fails.
const KEY_TYPES = new Set(["rsa", "ec", "ed25519"]);
const CURVES = new Set(["prime256v1", "secp384r1", "secp521r1"]);

/**
 * The certificate and key being served. {@linkcode TlsCredentials.context}
 * is what new handshakes get; {@linkcode TlsCredentials.reload} replaces it
 * only with a pair that passes the same checks as at start.
 */
export class TlsCredentials {
  #paths: TlsPaths;
  #loaded: Loaded;

  /**
   * Reads and checks the files. Throws {@linkcode UsageError} with one line
   * naming the file and the problem when they cannot serve TLS, and
   * {@linkcode RuntimeError} when a file cannot be read.
   */
  constructor(paths: TlsPaths) {
    this.#paths = paths;
    this.#loaded = load(paths);
  }

  /** The context new TLS sessions are made with. */
  get context(): SecureContext {
    return this.#loaded.context;
  }

  /** Logs a warning when the certificate has expired or is not valid yet: clients refuse it. */
  warnIfOutOfDate(now: Date = new Date()): void {
    const { certificate } = this.#loaded;
    const validFrom = certificate.validFromDate;
    const validTo = certificate.validToDate;
    const problem = now > validTo
      ? "has expired (valid from {validFrom} to {validTo}): clients will refuse it"
      : now < validFrom
      ? "is not valid yet (valid from {validFrom} to {validTo}): clients will refuse it until then"
      : undefined;
    if (problem === undefined) return;
    getLog().warning(`the certificate in --tls-cert {certFile} ${problem}`, {
      certFile: this.#paths.certFile,
      validFrom: validFrom.toISOString(),
      validTo: validTo.toISOString(),
    });
  }

  /**
   * Reads and checks the files again (SIGHUP). A good pair serves every new
   * handshake from now on, open sessions keep theirs; a bad one is refused
   * with a log line, and the pair in use is kept.
   */
  reload(): void {
    const log = getLog();
    let loaded: Loaded;
    try {
      loaded = load(this.#paths);
    } catch (error) {
      log.error("received SIGHUP: kept the TLS certificate in use: {error}", {
        signal: "SIGHUP",
        error: (error as Error).message,
      });
      return;
    }
    this.#loaded = loaded;
    const { certificate } = loaded;
    log.info(
      "received SIGHUP: reloaded --tls-cert {certFile} and --tls-key {keyFile}: {subject}, valid until {validTo}",
      {
        signal: "SIGHUP",
        ...this.#paths,
        // Node separates the parts of a name with new lines: keep the record one line.
        subject: certificate.subject.split("\n").join(", "),
        fingerprint: certificate.fingerprint256,
        validFrom: certificate.validFromDate.toISOString(),
        validTo: certificate.validToDate.toISOString(),
      },
    );
    this.warnIfOutOfDate();
  }
}

/** Reads the files, checks them, and makes the context. */
function load(paths: TlsPaths): Loaded {
  const { cert, key } = readTlsFiles(paths);
  const certificate = certificateIn(paths.certFile, cert, key);
  const privateKey = privateKeyIn(paths.keyFile, key);
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new UsageError(
      `--tls-key ${paths.keyFile} does not match the certificate in --tls-cert ${paths.certFile}`,
    );
  }
  try {
    return { context: createSecureContext({ cert, key }), certificate };
  } catch (error) {
    throw new UsageError(
      `cannot use --tls-cert ${paths.certFile} and --tls-key ${paths.keyFile}: ${
        (error as Error).message
      }`,
    );
  }
}

/** The first certificate of the chain in `text`, the content of `--tls-cert`. */
function certificateIn(file: string, text: string, keyText: string): X509Certificate {
  const blocks = pemBlocks(text);
  const block = blocks.find(isCertificate);
  if (block === undefined) {
    const hint = !blocks.some(isKey)
      ? " (expected a -----BEGIN CERTIFICATE----- block)"
      : pemBlocks(keyText).some(isCertificate)
      ? " (is it the key? the two look swapped)"
      : ", only a private key";
    throw new UsageError(`--tls-cert ${file}: no PEM certificate in it${hint}`);
  }
  try {
    return new X509Certificate(block.text);
  } catch {
    throw new UsageError(
      `--tls-cert ${file}: its certificate cannot be decoded (a damaged or truncated PEM block)`,
    );
  }
}

/** The private key in `text`, the content of `--tls-key`, if Deno's TLS can sign with it. */
function privateKeyIn(file: string, text: string): KeyObject {
  const blocks = pemBlocks(text);
  const block = blocks.find(isKey);
  if (block === undefined) {
    const hint = blocks.some(isCertificate)
      ? ", only a certificate"
      : " (expected a -----BEGIN PRIVATE KEY----- block)";
    throw new UsageError(`--tls-key ${file}: no PEM private key in it${hint}`);
  }
  // PKCS#8 says so in its label, the older formats in a Proc-Type header.
  if (block.label.startsWith("ENCRYPTED") || block.text.includes("ENCRYPTED")) {
    throw new UsageError(
      `--tls-key ${file}: the key is encrypted; echod needs it unencrypted (openssl pkey -in ${file} -out key.pem)`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(block.text);
  } catch {
    throw new UsageError(
      `--tls-key ${file}: its private key cannot be decoded (a damaged or truncated PEM block)`,
    );
  }
  const type = key.asymmetricKeyType ?? "unknown";
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (!KEY_TYPES.has(type) || (type === "ec" && !CURVES.has(curve ?? ""))) {
    throw new UsageError(
      `--tls-key ${file}: echod cannot serve TLS with a key of type ${type}${
        curve ? ` (${curve})` : ""
      }; use RSA, ECDSA (P-256, P-384 or P-521) or Ed25519`,
    );
  }
  return key;
}

function pemBlocks(text: string): PemBlock[] {
  return [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----[^]*?-----END \1-----/g)]
    .map((match) => ({ label: match[1], text: match[0] }));
}

function isCertificate(block: PemBlock): boolean {
  return block.label === "CERTIFICATE";
}

function isKey(block: PemBlock): boolean {
  return block.label === "PRIVATE KEY" || block.label.endsWith(" PRIVATE KEY");
}

/** Reads the PEM files, after checking for permission so the user learns which flag to add. */
function readTlsFiles(paths: TlsPaths): { cert: string; key: string } {
  const files = [paths.certFile, paths.keyFile];
  requirePermission(
    "serving TLS (--tls-cert, --tls-key)",
    files.map((path) => ({ name: "read", path })),
  );
  const [cert, key] = files.map((path, i) => {
    try {
      return Deno.readTextFileSync(path);
    } catch (error) {
      const reason = error instanceof Deno.errors.NotFound
        ? "no such file"
        : (error as Error).message;
      throw new RuntimeError(
        `cannot read ${i === 0 ? "--tls-cert" : "--tls-key"} ${path}: ${reason}`,
      );
    }
  });
  return { cert, key };
}
