/**
 * Assembles the build context of echod's container image for one
 * architecture, from what this machine can reach: libc6 and libgcc-s1 from
 * the apt sources it is configured with, the Deno runtime from its npm
 * package, and echod's own sources with their module cache. The Dockerfile
 * (deploy/docker/Dockerfile) only copies the result, so nothing is run, or
 * emulated, at build time.
 *
 * The Debian packages are fetched with a private apt state (package lists
 * for the target architecture, kept under the cache folder), so the host's
 * dpkg configuration is never changed and no root is needed.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { UsageError } from "../../lib/errors.ts";

/** The Deno runtime the image carries (the npm packages pin it). */
export const DENO_VERSION = "2.9.6";

/** What differs between the image's architectures. */
export interface Platform {
  /** The OCI platform, e.g. `linux/arm64`. */
  name: string;
  /** The Debian architecture, e.g. `arm64`. */
  debian: string;
  /** The npm package holding the Deno runtime. */
  npm: string;
  /** That package's `dist.integrity` (`npm view PACKAGE@VERSION dist.integrity`). */
  integrity: string;
  /** The ELF `e_machine` of binaries for it (62 x86-64, 183 AArch64). */
  elfMachine: number;
}

/** The platforms the image is built for. */
export const PLATFORMS: Record<string, Platform> = {
  "linux/amd64": {
    name: "linux/amd64",
    debian: "amd64",
    npm: "@deno/linux-x64-glibc",
    integrity:
      "sha512-3md4TKLCuzsLDmfOoC5KN7NAZaxSVkMgm64vg6foD00JBADCpYS2/5QqXfzgnP5ZQz3iLP9vBQJtEgc116OAoQ==",
    elfMachine: 62,
  },
  "linux/arm64": {
    name: "linux/arm64",
    debian: "arm64",
    npm: "@deno/linux-arm64-glibc",
    integrity:
      "sha512-poqhoH9B3nYloigEMPT5t8HY+wBeiuea1An5Q7fqgJzP0SYmWsoS/oUnWO/pEiA4ofzIBy1Elt/in58xKtxEoQ==",
    elfMachine: 183,
  },
};

/** The platform named `name`; a {@linkcode UsageError} for any other. */
export function platformOf(name: string): Platform {
  const platform = PLATFORMS[name];
  if (platform) return platform;
  throw new UsageError(
    `unknown platform ${name}: use ${Object.keys(PLATFORMS).join(" or ")}`,
  );
}

/** This machine's own platform (linux/arm64 on an ARM host, linux/amd64 otherwise). */
export function hostPlatform(): Platform {
  return PLATFORMS[Deno.build.arch === "aarch64" ? "linux/arm64" : "linux/amd64"];
}

/** Something the machine lacked or refused while assembling; its message is one line. */
export class ImageError extends Error {
  /** Creates an error with a one-line message for the user. */
  constructor(message: string) {
    super(message);
    this.name = "ImageError";
  }
}

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../..", import.meta.url));

/** Where downloads are kept between builds (dist/ is not tracked). */
export const CACHE_DIR = `${ROOT}dist/image/cache`;

/** The shared libraries a Deno binary links (glibc and libgcc_s). */
const DEBIAN_PACKAGES = ["libc6", "libgcc-s1"];

/** Parts of those packages a Deno binary never opens: documentation, iconv modules, tools. */
const UNUSED = [/^usr\/share(\/|$)/, /\/gconv(\/|$)/, /^etc\/ld\.so\.conf\.d(\/|$)/, /^sbin(\/|$)/];

/** The entry modules of `echod serve` (the worker is started by URL, not imported). */
const ENTRY_MODULES = ["main.ts", "lib/serve/worker_thread.ts"];

/**
 * Fills `dir` (emptied first) with `base/`, `runtime/deno` and `app/` for
 * `platform`, as deploy/docker/Dockerfile expects them.
 */
export async function assembleContext(platform: Platform, dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${dir}/runtime`, { recursive: true });
  await assembleBase(platform, `${dir}/base`);
  await extractDeno(platform, `${dir}/runtime`);
  await assembleApp(`${dir}/app`);
}

/** libc6 and libgcc-s1 unpacked, trimmed, and the users of the image. */
async function assembleBase(platform: Platform, dir: string): Promise<void> {
  for (const deb of await debianPackages(platform)) {
    await run("dpkg-deb", ["-x", deb, dir], {
      why: "dpkg-deb (from dpkg) unpacks the Debian packages",
    });
  }
  await prune(dir, "");
  // Packages for a merged /usr (Ubuntu 24.04) ship /usr/lib only; the ELF
  // interpreter is still looked up as /lib*/ld-linux*.
  for (const top of ["lib", "lib64"]) {
    if (!(await exists(`${dir}/${top}`)) && (await exists(`${dir}/usr/${top}`))) {
      await Deno.symlink(`usr/${top}`, `${dir}/${top}`);
    }
  }
  await Deno.mkdir(`${dir}/etc/echod`, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/etc/passwd`,
    "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n",
  );
  await Deno.writeTextFile(`${dir}/etc/group`, "root:x:0:\nnonroot:x:65532:\n");
}

/** Removes the {@linkcode UNUSED} parts under `dir`. */
async function prune(dir: string, relative: string): Promise<void> {
  for await (const entry of Deno.readDir(`${dir}/${relative}`)) {
    const path = relative === "" ? entry.name : `${relative}/${entry.name}`;
    if (UNUSED.some((pattern) => pattern.test(path))) {
      await Deno.remove(`${dir}/${path}`, { recursive: true });
    } else if (entry.isDirectory) {
      await prune(dir, path);
    }
  }
}

/**
 * Downloads {@linkcode DEBIAN_PACKAGES} for the platform's architecture
 * with apt-get, from this machine's apt sources but with package lists of
 * its own, and returns the .deb files. Lists are refreshed only when a
 * download fails (a superseded version); when the sources cannot be read
 * at all, the last downloaded packages are used, with a warning.
 */
async function debianPackages(platform: Platform): Promise<string[]> {
  const state = `${CACHE_DIR}/apt-${platform.debian}`;
  for (const sub of ["lists/partial", "cache/archives/partial", "new"]) {
    await Deno.mkdir(`${state}/${sub}`, { recursive: true });
  }
  if (!(await exists(`${state}/status`))) await Deno.writeTextFile(`${state}/status`, "");
  const options = [
    "-q",
    "-o",
    `APT::Architecture=${platform.debian}`,
    "-o",
    `APT::Architectures=${platform.debian}`,
    "-o",
    `Dir::State::Lists=${state}/lists`,
    "-o",
    `Dir::State::status=${state}/status`,
    "-o",
    `Dir::Cache=${state}/cache`,
    // These folders are the caller's own, so apt need not switch to its user.
    "-o",
    "APT::Sandbox::User=root",
  ];
  const why = "apt-get fetches libc6 and libgcc-s1 for the image";
  const label = `apt-get download ${DEBIAN_PACKAGES.join(" ")} (${platform.debian})`;
  const download = () =>
    run("apt-get", [...options, "download", ...DEBIAN_PACKAGES], {
      why,
      cwd: `${state}/new`,
      label,
    }).then(() => undefined, (error: Error) => error);
  let failure = await download();
  if (failure) {
    // Lists missing or out of date: refresh them (an update that fails for
    // some sources may still have listed the packages), then try again.
    const update = await run("apt-get", [...options, "update"], {
      why,
      label: `apt-get update (${platform.debian})`,
    }).then(() => undefined, (error: Error) => error);
    failure = await download();
    if (failure) {
      if (!(await exists(`${state}/debs`))) {
        throw new ImageError(
          update
            ? `this machine's apt sources have no ${platform.debian} packages (${update.message}); ` +
              `build on a ${platform.debian} host, or add an apt source for ${platform.debian} ` +
              `(Ubuntu keeps arm64 on a separate ports archive)`
            : failure.message,
        );
      }
      console.error(
        `image: warning: using the ${platform.debian} packages downloaded before (${failure.message})`,
      );
    }
  }
  const fetched = failure === undefined;
  if (fetched) {
    await Deno.remove(`${state}/debs`, { recursive: true }).catch(() => {});
    await Deno.rename(`${state}/new`, `${state}/debs`);
  }
  await Deno.remove(`${state}/new`, { recursive: true }).catch(() => {});
  const debs = [];
  for await (const entry of Deno.readDir(`${state}/debs`)) {
    if (entry.name.endsWith(".deb")) debs.push(`${state}/debs/${entry.name}`);
  }
  if (debs.length !== DEBIAN_PACKAGES.length) {
    throw new ImageError(
      `apt-get download of ${DEBIAN_PACKAGES.join(" ")} left ${debs.length} packages`,
    );
  }
  return debs.sort();
}

/** The Deno runtime for the platform, from its npm package (checked against the pinned integrity). */
async function extractDeno(platform: Platform, dir: string): Promise<void> {
  const spec = `${platform.npm}@${DENO_VERSION}`;
  const tarball = `${CACHE_DIR}/${platform.npm.slice(1).replace("/", "-")}-${DENO_VERSION}.tgz`;
  if (!(await exists(tarball)) || (await integrityOf(tarball)) !== platform.integrity) {
    await Deno.mkdir(CACHE_DIR, { recursive: true });
    await run(
      "npm",
      ["pack", "--silent", "--pack-destination", CACHE_DIR, spec],
      { why: `npm fetches ${spec}` },
    );
    const integrity = await integrityOf(tarball);
    if (integrity !== platform.integrity) {
      throw new ImageError(
        `${spec} from npm has integrity ${integrity}, not the pinned ${platform.integrity}`,
      );
    }
  }
  await run(
    "tar",
    ["-xzf", tarball, "-C", dir, "--strip-components=1", "package/deno"],
    { why: "tar unpacks the runtime" },
  );
}

/** npm's integrity string (`sha512-` and base64) of a file. */
async function integrityOf(path: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-512", await Deno.readFile(path)));
  return `sha512-${btoa(String.fromCharCode(...digest))}`;
}

/**
 * The modules `echod serve` loads, a deno.json and deno.lock cut down to
 * the packages they import, then a module cache (`.deno`) filled for them
 * by `deno cache`: the image runs with `--cached-only`. Other commands
 * (client, bench, service) and their packages are left out.
 */
async function assembleApp(dir: string): Promise<void> {
  const files = new Set<string>();
  const packages = new Set<string>();
  for (const entry of ENTRY_MODULES) {
    const graph = await moduleGraph(entry);
    for (const file of graph.files) files.add(file);
    for (const name of graph.packages) packages.add(name);
  }
  for (const file of files) {
    const target = `${dir}/${file}`;
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(`${ROOT}${file}`, target);
  }
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const imports = Object.fromEntries(
    Object.entries(config.imports as Record<string, string>).filter(([name]) => packages.has(name)),
  );
  await Deno.writeTextFile(
    `${dir}/deno.json`,
    JSON.stringify({ version: config.version, imports, unstable: config.unstable }, null, 2) + "\n",
  );
  const lock = trimLock(
    JSON.parse(await Deno.readTextFile(`${ROOT}deno.lock`)),
    Object.values(imports),
  );
  await Deno.writeTextFile(`${dir}/deno.lock`, JSON.stringify(lock, null, 2) + "\n");
  // --frozen: the packages are the ones the project's lock pins, or nothing.
  await run(Deno.execPath(), ["cache", "--quiet", "--frozen", ...ENTRY_MODULES], {
    cwd: dir,
    env: { DENO_DIR: `${dir}/.deno` },
    label: "deno cache",
  });
  // Only the packages stay: the rest of a module cache is per-machine
  // (compiled code, analysis results) and would be written to at run time.
  for await (const entry of Deno.readDir(`${dir}/.deno`)) {
    if (entry.name !== "npm") await Deno.remove(`${dir}/.deno/${entry.name}`, { recursive: true });
  }
}

/** deno.lock (version 5) as far as trimming it goes. */
interface Lock {
  specifiers: Record<string, string>;
  npm: Record<string, { dependencies?: string[] }>;
  [other: string]: unknown;
}

/** `lock` with only `specifiers` (e.g. `npm:@logtape/logtape@2.4.2`) and what they depend on. */
function trimLock(lock: Lock, specifiers: string[]): Lock {
  const keep = new Set<string>();
  const pending = specifiers.map((specifier) => {
    const name = specifier.replace(/^npm:/, "").replace(/@[^@]*$/, "");
    return `${name}@${lock.specifiers[specifier]}`;
  });
  while (pending.length > 0) {
    const key = pending.pop()!;
    if (keep.has(key) || !lock.npm[key]) continue;
    keep.add(key);
    for (const dependency of lock.npm[key].dependencies ?? []) {
      // A dependency is named "name", or "name@version" when several versions are locked.
      const match = Object.keys(lock.npm).find((candidate) =>
        candidate === dependency || candidate.replace(/@[^@]*$/, "") === dependency
      );
      if (match) pending.push(match);
    }
  }
  return {
    version: lock.version,
    specifiers: Object.fromEntries(
      specifiers.map((specifier) => [specifier, lock.specifiers[specifier]]),
    ),
    npm: Object.fromEntries(Object.entries(lock.npm).filter(([key]) => keep.has(key))),
    workspace: { dependencies: specifiers },
  };
}

/** A module graph node, as `deno info --json` prints it. */
interface GraphModule {
  specifier: string;
  dependencies?: { specifier: string; code?: { specifier: string }; isDynamic?: boolean }[];
}

/**
 * The repository files `entry` loads (relative paths) and the bare
 * specifiers (import map names) they import, following static and dynamic
 * imports, except main.ts's dynamic imports: those load the other commands.
 */
async function moduleGraph(entry: string): Promise<{ files: string[]; packages: string[] }> {
  const info = JSON.parse(
    await run(Deno.execPath(), ["info", "--json", entry], { cwd: ROOT, label: "deno info" }),
  ) as { modules: GraphModule[] };
  const bySpecifier = new Map(info.modules.map((module) => [module.specifier, module]));
  const root = new URL(ROOT, "file:///").href;
  const main = `${root}main.ts`;
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [new URL(entry, root).href];
  while (pending.length > 0) {
    const specifier = pending.pop()!;
    if (files.has(specifier) || !specifier.startsWith(root)) continue;
    files.add(specifier);
    for (const dependency of bySpecifier.get(specifier)?.dependencies ?? []) {
      if (specifier === main && dependency.isDynamic) continue;
      if (!/^(\.|\/|[a-z]+:)/.test(dependency.specifier)) packages.add(dependency.specifier);
      if (dependency.code) pending.push(dependency.code.specifier);
    }
  }
  return {
    files: [...files].map((specifier) => decodeURIComponent(specifier.slice(root.length))),
    packages: [...packages],
  };
}

/** Options for {@linkcode run}. */
export interface RunOptions {
  /** The working directory. */
  cwd?: string;
  /** Variables added to the environment. */
  env?: Record<string, string>;
  /** What the program is needed for, said when it is missing. */
  why?: string;
  /** How a failure names the command. @default {"PROGRAM SUBCOMMAND"} */
  label?: string;
}

/**
 * Runs `program` and returns its stdout; throws an {@linkcode ImageError}
 * saying what it was needed for when it is missing, or the cause from its stderr
 * when it fails.
 */
export async function run(
  program: string,
  args: string[],
  options: RunOptions = {},
): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(program, {
      args,
      stdin: "null",
      cwd: options.cwd,
      // Plain text, so that the cause quoted below has no colour codes.
      env: { NO_COLOR: "1", ...options.env },
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ImageError(
        `${program} is not installed${options.why ? `: ${options.why}` : ""}`,
      );
    }
    throw error;
  }
  const stdout = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    // The first "E:" (apt) or "error:" (deno) line names the cause; other
    // programs end with it.
    const lines = new TextDecoder().decode(output.stderr).split("\n").map((l) => l.trim())
      .filter((l) => l !== "");
    const cause = lines.find((l) => /^(E|error): /.test(l)) ?? lines.at(-1) ??
      `exit code ${output.code}`;
    throw new ImageError(`${options.label ?? `${program} ${args[0]}`} failed: ${cause}`);
  }
  return stdout;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
