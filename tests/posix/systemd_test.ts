/**
 * `echod service` with systemd itself: the unit as `systemd-analyze` rates
 * and verifies it, an install into an offline systemd root, and start, stop
 * and restart through `systemctl`. POSIX only (systemd is Linux's): the
 * Windows lane leaves this folder out.
 */

import assert from "node:assert/strict";
import { NOT_INSTALLED } from "../../lib/service/system.ts";
import { LINUX, runEchod, skipUnless } from "../_echod.ts";
import { has } from "../_programs.ts";

const SERVICE_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-run=systemctl",
];

async function print(kind: string, serveArgs: string[]): Promise<string> {
  const { code, stdout, stderr } = await runEchod(["service", "print", kind, "--", ...serveArgs]);
  assert.equal(code, 0, stderr);
  return stdout;
}

const hasAnalyze = has("systemd-analyze");
if (!hasAnalyze) {
  console.log("skipping the systemd-analyze tests: systemd-analyze is not installed");
}

Deno.test({
  name: "systemd unit: systemd-analyze security rates it 2.0 or lower (1.1 measured)",
  ignore: !hasAnalyze,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      for (const args of [["--port", "7007"], ["--port", "80"]]) {
        const path = `${dir}/echod.service`;
        await Deno.writeTextFile(path, await print("systemd", args));
        const out = await new Deno.Command("systemd-analyze", {
          args: ["security", "--offline=yes", path],
          env: { SYSTEMD_COLORS: "0" },
        }).output();
        const text = new TextDecoder().decode(out.stdout);
        const score = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(text)?.[1]);
        assert.ok(score <= 2.0, `exposure ${score} for ${args.join(" ")}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "systemd unit passes systemd-analyze verify without a warning",
  ignore: !hasAnalyze,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      for (
        const args of [["--port", "7007"], [
          "--port",
          "80",
          "--log-file",
          "/var/log/echod/echod.log",
        ], ["--tls-cert", "/etc/echod/cert.pem", "--tls-key", "/etc/echod/key.pem"]]
      ) {
        const path = `${dir}/echod.service`;
        await Deno.writeTextFile(path, await print("systemd", args));
        const out = await new Deno.Command("systemd-analyze", { args: ["verify", path] }).output();
        const stderr = new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, stderr);
        // Only the note about multi-user.target (absent in a container) may appear.
        const warnings = stderr.split("\n").filter((l) =>
          l !== "" && !/multi-user\.target/.test(l)
        );
        assert.deepEqual(warnings, []);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const hasSystemctl = has("systemctl");
if (!hasSystemctl) console.log("skipping the offline systemd install test: no systemctl here");

Deno.test({
  name: "service install and uninstall into an offline systemd root, idempotently",
  ignore: !hasSystemctl,
}, async () => {
  const root = await Deno.makeTempDir();
  const unit = `${root}/etc/systemd/system/echod.service`;
  const wants = `${root}/etc/systemd/system/multi-user.target.wants/echod.service`;
  try {
    for (let i = 0; i < 2; i++) {
      const { code, stdout, stderr } = await runEchod(
        ["service", "install", "--root", root, "--", "--port", "7007"],
        SERVICE_PERMISSIONS,
      );
      assert.equal(code, 0, stderr);
      assert.match(stdout, /installed .*echod\.service and enabled it/);
      assert.match(await Deno.readTextFile(unit), /serve --port 7007/);
      assert.ok((await Deno.lstat(wants)).isSymlink);
    }
    const removed = await runEchod(["service", "uninstall", "--root", root], SERVICE_PERMISSIONS);
    assert.equal(removed.code, 0, removed.stderr);
    await assert.rejects(Deno.lstat(unit), Deno.errors.NotFound);
    await assert.rejects(Deno.lstat(wants), Deno.errors.NotFound);
    const again = await runEchod(["service", "uninstall", "--root", root], SERVICE_PERMISSIONS);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /not installed/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name: "service start, stop and restart run systemctl; an image root is refused",
  ignore: skipUnless(
    LINUX,
    "the systemctl control test",
    `systemd is Linux's (this is ${Deno.build.os})`,
  ),
}, async () => {
  // A stand-in systemctl on PATH records its calls and answers as systemd
  // does for a missing unit or a user who is not root.
  const dir = await Deno.makeTempDir();
  const calls = `${dir}/calls`;
  await Deno.writeTextFile(
    `${dir}/systemctl`,
    `#!/bin/sh
echo "$*" >>"${calls}"
case "$FAKE_SYSTEMCTL" in
  missing) echo "Failed to $1 echod.service: Unit echod.service not found." >&2; exit 5 ;;
  denied) echo "Failed to $1 echod.service: Interactive authentication required." >&2; exit 1 ;;
esac
`,
  );
  await Deno.chmod(`${dir}/systemctl`, 0o755);
  const control = (action: string, mode = "") =>
    runEchod(["service", action], ["--allow-read", "--allow-run=systemctl"], {
      env: { PATH: `${dir}:${Deno.env.get("PATH")}`, FAKE_SYSTEMCTL: mode },
    });
  try {
    for (
      const [action, done] of [["start", "running"], ["stop", "stopped"], [
        "restart",
        "restarted",
      ]]
    ) {
      const { code, stdout, stderr } = await control(action);
      assert.equal(code, 0, stderr);
      assert.equal(stdout, `echod is ${done} (systemctl status echod)\n`);
    }
    assert.equal(
      await Deno.readTextFile(calls),
      "start echod.service\nstop echod.service\nrestart echod.service\n",
    );
    const missing = await control("start", "missing");
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `echod: ${NOT_INSTALLED}\n`);
    const denied = await control("stop", "denied");
    assert.equal(denied.code, 1);
    assert.equal(
      denied.stderr,
      "echod: systemctl stop was denied: run echod service as root (sudo) or Administrator\n",
    );
    const image = await runEchod(["service", "restart", "--root", dir], [
      "--allow-read",
      "--allow-run=systemctl",
    ]);
    assert.equal(image.code, 2);
    assert.equal(
      image.stderr,
      "echod: --root installs into an image, where nothing runs: echod service restart is for the running system\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
