/**
 * scripts/install.sh against a fake release served on loopback: a good
 * checksum installs, a bad one refuses and leaves nothing behind, an
 * unknown platform is named in a clear error.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ROOT, skipUnless } from "../_echod.ts";

const VERSION = "9.9.9";

interface Release {
  url: string;
  close(): Promise<void>;
}

/** Serves /releases/latest (a redirect), the archive for any target, and SHA256SUMS. */
function fakeRelease(dir: string, corrupt: boolean): Release {
  const archives = new Map<string, Uint8Array<ArrayBuffer>>();
  async function archive(name: string): Promise<Uint8Array<ArrayBuffer>> {
    if (!archives.has(name)) {
      const stage = `${dir}/stage`;
      await Deno.mkdir(`${stage}/${name}`, { recursive: true });
      await Deno.writeTextFile(`${stage}/${name}/echod`, "#!/bin/sh\necho fake echod $*\n");
      await Deno.chmod(`${stage}/${name}/echod`, 0o755);
      const tar = await new Deno.Command("tar", {
        args: ["-czf", `${dir}/${name}.tar.gz`, "-C", stage, name],
      }).output();
      assert.ok(tar.success);
      archives.set(name, await Deno.readFile(`${dir}/${name}.tar.gz`));
    }
    return archives.get(name)!;
  }
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/releases/latest") {
      return new Response(null, {
        status: 302,
        headers: { location: `/releases/tag/v${VERSION}` },
      });
    }
    if (path === `/releases/tag/v${VERSION}`) return new Response("release page");
    const file = /^\/releases\/download\/v[\d.]+\/(.+)$/.exec(path)?.[1];
    if (file === "SHA256SUMS") {
      // Sums for the targets this machine could ask for.
      const lines = [];
      for (const target of ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]) {
        const name = `echod-${VERSION}-${target}`;
        const sum = createHash("sha256").update(await archive(name)).digest("hex");
        lines.push(
          `${corrupt ? sum.replace(/^./, (c) => (c === "0" ? "1" : "0")) : sum}  ${name}.tar.gz`,
        );
      }
      return new Response(lines.join("\n") + "\n");
    }
    if (file?.endsWith(".tar.gz")) {
      return new Response(await archive(file.slice(0, -".tar.gz".length)));
    }
    return new Response("not found", { status: 404 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/releases`,
    close: () => server.shutdown(),
  };
}

async function install(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("sh", {
    args: ["scripts/install.sh", ...args],
    cwd: ROOT,
    env,
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

const linuxIntel = Deno.build.os === "linux";

Deno.test({
  name: "install.sh installs the latest release when the checksum matches",
  ignore: skipUnless(linuxIntel, "the install.sh test", "it serves a Linux release to install.sh"),
  async fn() {
    const dir = await Deno.makeTempDir();
    const release = fakeRelease(dir, false);
    try {
      const { code, stdout, stderr } = await install(["--prefix", `${dir}/bin`], {
        ECHOD_BASE_URL: release.url,
        TMPDIR: dir,
      });
      assert.equal(code, 0, stderr);
      assert.match(
        stdout,
        new RegExp(`installed echod ${VERSION.replace(/\./g, "\\.")} to ${dir}/bin/echod`),
      );
      const run = await new Deno.Command(`${dir}/bin/echod`, { args: ["--version"] }).output();
      assert.equal(new TextDecoder().decode(run.stdout), "fake echod --version\n");
    } finally {
      await release.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "install.sh refuses a bad checksum and leaves nothing behind",
  ignore: skipUnless(
    linuxIntel,
    "the install.sh checksum test",
    "it serves a Linux release to install.sh",
  ),
  async fn() {
    const dir = await Deno.makeTempDir();
    const tmp = `${dir}/tmp`;
    await Deno.mkdir(tmp);
    const release = fakeRelease(dir, true);
    try {
      const { code, stderr } = await install(["--prefix", `${dir}/bin`, "--version", VERSION], {
        ECHOD_BASE_URL: release.url,
        TMPDIR: tmp,
      });
      assert.equal(code, 1);
      assert.match(
        stderr,
        /^install\.sh: checksum mismatch for echod-9\.9\.9-\S+\.tar\.gz \(expected [0-9a-f]{64}, got [0-9a-f]{64}\); refusing to install\n$/,
      );
      await assert.rejects(Deno.lstat(`${dir}/bin/echod`), Deno.errors.NotFound);
      assert.deepEqual([...Deno.readDirSync(tmp)], [], "temporary files were left behind");
    } finally {
      await release.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "install.sh names an unknown platform in one line",
  ignore: skipUnless(
    Deno.build.os !== "windows",
    "the install.sh platform test",
    "install.sh is for Linux and macOS (Windows has install.ps1)",
  ),
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const [flag, value, message] of [
        [
          "-s",
          "Plan9",
          "unsupported operating system 'Plan9': echod is built for Linux, macOS and Windows",
        ],
        [
          "-m",
          "riscv64",
          "unsupported architecture 'riscv64': echod is built for x86_64 and aarch64",
        ],
      ]
    ) {
      // A uname that reports the platform under test, first on PATH.
      await Deno.writeTextFile(
        `${dir}/uname`,
        `#!/bin/sh\nif [ "$1" = "${flag}" ]; then echo ${value}; else ${
          flag === "-s" ? "echo x86_64" : "echo Linux"
        }; fi\n`,
      );
      await Deno.chmod(`${dir}/uname`, 0o755);
      const { code, stderr } = await install([], {
        PATH: `${dir}:/usr/bin:/bin`,
        ECHOD_BASE_URL: "http://127.0.0.1:9/releases",
      });
      assert.equal(code, 1);
      assert.equal(stderr, `install.sh: ${message}\n`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
