/**
 * `echod service`: the unit, plist and script for each platform, checked
 * for content; launchd's control steps; usage errors; the compiled binary.
 * (systemd itself: `posix/systemd_test.ts`.)
 */

import assert from "node:assert/strict";
// Not in deno.json's imports: `deno task` installs every package listed there, and
// serving should fetch no development tool (pinned in deno.dev.lock instead).
// deno-lint-ignore no-import-prefix
import { XMLParser, XMLValidator } from "npm:fast-xml-parser@5.12.1";
import { launchctlSteps } from "../lib/service/launchd.ts";
import { ROOT, runEchod, skipUnless } from "./_echod.ts";

async function print(kind: string, serveArgs: string[]): Promise<string> {
  const { code, stdout, stderr } = await runEchod(["service", "print", kind, "--", ...serveArgs]);
  assert.equal(code, 0, stderr);
  return stdout;
}

Deno.test("systemd unit: serve options, sandbox, no capabilities above port 1024", async () => {
  const unit = await print("systemd", ["--port", "7007", "--max-conns", "20000"]);
  assert.match(
    unit,
    /^ExecStart=(\S+|"[^"]+") run --allow-net (\S+|"[^"]+")main\.ts"? serve --port 7007 --max-conns 20000$/m,
  );
  for (
    const line of [
      "Restart=on-failure",
      "DynamicUser=yes",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
      "CapabilityBoundingSet=",
      "AmbientCapabilities=",
      "LimitNOFILE=21024",
      "StandardError=journal",
      "WantedBy=multi-user.target",
    ]
  ) {
    assert.ok(unit.split("\n").includes(line), `missing: ${line}`);
  }
  assert.doesNotMatch(unit, /CAP_NET_BIND_SERVICE/);
});

Deno.test("systemd unit: a port below 1024 gets CAP_NET_BIND_SERVICE and nothing else", async () => {
  const unit = await print("systemd", ["--port", "7"]);
  assert.ok(unit.includes("\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"));
  assert.ok(unit.includes("\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"));
});

Deno.test("systemd unit: TLS files as credentials, and exactly the permissions its options need", async () => {
  const unit = await print("systemd", [
    "--tls-cert=/etc/echod/cert.pem",
    "--tls-key",
    "/etc/echod/key.pem",
    "--log-file",
    "/var/log/echod/echod.log",
  ]);
  const exec = unit.split("\n").find((l) => l.startsWith("ExecStart="))!;
  assert.match(
    exec,
    / run --allow-net --allow-read=%d\/tls-cert,%d\/tls-key --allow-write=\/var\/log\/echod\/echod\.log /,
  );
  assert.match(exec, / --tls-cert=%d\/tls-cert --tls-key %d\/tls-key /);
  assert.match(unit, /^LoadCredential=tls-cert:\/etc\/echod\/cert\.pem$/m);
  assert.match(unit, /^LoadCredential=tls-key:\/etc\/echod\/key\.pem$/m);
  assert.match(unit, /^ReadWritePaths=\/var\/log\/echod$/m);
  assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
});

Deno.test("launchd plist is well-formed XML with the daemon's keys", async () => {
  const plist = await print("launchd", ["--port", "7007"]);
  assert.equal(XMLValidator.validate(plist), true);
  const parsed = new XMLParser({ parseTagValue: false }).parse(plist);
  const dict = parsed.plist.dict;
  const keys: string[] = dict.key;
  for (
    const key of [
      "Label",
      "ProgramArguments",
      "RunAtLoad",
      "KeepAlive",
      "UserName",
      "SoftResourceLimits",
      "StandardErrorPath",
    ]
  ) {
    assert.ok(keys.includes(key), `missing key ${key}`);
  }
  assert.ok(dict.string.includes("dev.echod"));
  assert.ok(dict.string.includes("nobody"));
  assert.ok(dict.string.includes("/var/log/echod/echod.log"));
  assert.deepEqual(dict.array.string.slice(-3), ["serve", "--port", "7007"]);
});

Deno.test("Windows script creates or updates a native service that restarts and logs to a file", async () => {
  const script = await print("windows", ["--port", "7007", "--udp"]);
  const binPath = /^\$binPath = '(.*)'$/m.exec(script)?.[1];
  assert.ok(binPath !== undefined, script);
  // The SCM starts `echod service run`, which answers it, then serves.
  assert.match(
    binPath,
    / service run -- --port 7007 --udp --log-file C:\\ProgramData\\echod\\echod\.log$/,
  );
  assert.match(binPath, / --allow-ffi /);
  assert.match(
    script,
    /New-Service -Name 'echod' -BinaryPathName \$binPath .* -StartupType Automatic/,
  );
  assert.match(script, /Invoke-CimMethod -MethodName Change -Arguments @\{ PathName = \$binPath;/);
  assert.match(script, /sc\.exe failure echod reset= 86400 actions= restart\/5000\//);
  assert.match(script, /New-NetFirewallRule .* -Protocol TCP -LocalPort 7007 /);
  assert.match(script, /New-NetFirewallRule .* -Protocol UDP -LocalPort 7007 /);
  assert.match(script, /^Start-Service -Name 'echod'$/m);
  assert.doesNotMatch(script, /ScheduledTask/);
});

Deno.test("service run is for the Windows service manager", {
  // On Windows it is the real thing: the lane's smoke test runs it under the service manager.
  ignore: skipUnless(
    Deno.build.os !== "windows",
    "the service-run refusal",
    "on Windows service run is the service itself (the smoke test runs it under sc)",
  ),
}, async () => {
  const { code, stderr } = await runEchod(["service", "run", "--", "--port", "0"]);
  assert.equal(code, 2);
  assert.match(
    stderr.trim(),
    /^echod: echod service run is how the Windows service manager starts echod; on \w+, use echod serve$/,
  );
});

Deno.test("service usage errors: one line each, exit 2", async () => {
  const other = Deno.build.os === "darwin" ? "systemd" : "launchd";
  const foreign = Deno.build.os === "windows" ? "systemd" : "windows";
  for (
    const [args, message] of [
      [["service"], /^echod service needs an action: /],
      [
        ["service", "reboot"],
        /^unknown service action 'reboot': use install, uninstall, status, start, stop, restart, print, run$/,
      ],
      [["service", "stop", other], new RegExp(`^a ${other} service cannot be stopped on `)],
      [
        ["service", "run", foreign],
        new RegExp(`^a ${foreign} service cannot be run on ${Deno.build.os}: this host uses `),
      ],
      [
        ["service", "start"],
        Deno.build.os === "windows"
          ? /^echod service start needs ffi permission: add --allow-ffi to the deno command$/
          : /^echod service start needs run permission: add --allow-run=(systemctl|launchctl) to the deno command$/,
      ],
      [
        ["service", "print", "upstart"],
        /^unknown service kind 'upstart': use systemd, launchd, windows$/,
      ],
      [["service", "install", other], new RegExp(`^a ${other} service cannot be installed on `)],
      [["service", "print", "--", "--port", "70000"], /^port 70000 is out of range \(0-65535\)$/],
      [["service", "print", "--", "--help"], /^the options after -- are serve options/],
      [
        ["service", "print", "systemd", "--", "--tls-cert", "c.pem", "--tls-key", "/k.pem"],
        /^--tls-cert c\.pem is a relative path, and a service does not start in this folder: give an absolute path$/,
      ],
      [
        ["service", "print", "systemd", "--", "--log-file", "/tmp/echod.log"],
        /^--log-file \/tmp\/echod\.log: PrivateTmp=yes gives the service a \/tmp of its own; choose a file elsewhere/,
      ],
      [
        ["service", "print", "systemd", "--", "--log-file", "/home/me/echod.log"],
        /^--log-file \/home\/me\/echod\.log: ProtectHome=yes hides \/home and \/root/,
      ],
      [
        ["service", "install", "--", "--port", "7007"],
        Deno.build.os === "windows"
          ? /^echod service install needs ffi, write and run permission: add --allow-ffi --allow-write=C:\\ProgramData\\echod --allow-run=netsh\.exe to the deno command$/
          : /^echod service install needs (write and )?run permission: add (--allow-write=\S+ )?--allow-run=\S+ to the deno command$/,
      ],
    ] as [string[], RegExp][]
  ) {
    const { code, stderr } = await runEchod(args);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.equal(stderr.split("\n").length, 2, stderr);
    assert.match(stderr.replace(/^echod: /, "").trimEnd(), message);
  }
});

Deno.test("launchd: stop unloads the daemon, start loads or kicks it, restart kills it first", () => {
  const plistPath = "/Library/LaunchDaemons/dev.echod.plist";
  const bootstrap = [["bootstrap", "system", plistPath]];
  assert.deepEqual(launchctlSteps("stop", { loaded: true, plistPath }), [[
    "bootout",
    "system/dev.echod",
  ]]);
  assert.deepEqual(launchctlSteps("stop", { loaded: false, plistPath }), []);
  assert.deepEqual(launchctlSteps("start", { loaded: false, plistPath }), bootstrap);
  assert.deepEqual(launchctlSteps("restart", { loaded: false, plistPath }), bootstrap);
  assert.deepEqual(launchctlSteps("start", { loaded: true, plistPath }), [[
    "kickstart",
    "system/dev.echod",
  ]]);
  assert.deepEqual(launchctlSteps("restart", { loaded: true, plistPath }), [[
    "kickstart",
    "-k",
    "system/dev.echod",
  ]]);
});

// deno compile downloads the runtime it embeds; where that is impossible the
// test is skipped, with the reason printed.
const compiledDir = await Deno.makeTempDir();
const compiled = await new Deno.Command(Deno.execPath(), {
  args: ["task", "compile", "--output", `${compiledDir}/echod`],
  cwd: ROOT,
  env: { NO_COLOR: "1" },
  stdout: "piped",
  stderr: "piped",
}).output();
const compileLines = new TextDecoder().decode(compiled.stderr).split("\n").map((l) => l.trim());
const compileError = compiled.success ? undefined : (
  compileLines.find((l) => /error sending request/.test(l)) ??
    compileLines.find((l) => l.startsWith("error")) ?? "no reason given"
);
if (compileError !== undefined) {
  console.log(`skipping the compiled-binary test: deno compile failed here (${compileError})`);
  await Deno.remove(compiledDir, { recursive: true });
}

Deno.test({
  name: "the compiled binary echoes over IPv4 and IPv6 and reports its version",
  ignore: compileError !== undefined,
  async fn() {
    const binary = `${compiledDir}/echod${Deno.build.os === "windows" ? ".exe" : ""}`;
    try {
      const version = await new Deno.Command(binary, { args: ["--version"] }).output();
      assert.match(
        new TextDecoder().decode(version.stdout),
        new RegExp(
          `^echod \\d+\\.\\d+\\.\\d+ \\(deno ${Deno.version.deno}, ${Deno.build.target}\\)`,
        ),
      );
      const child = new Deno.Command(binary, {
        args: ["--port", "0", "--log-format", "json"],
        stderr: "piped",
      }).spawn();
      const lines = child.stderr.pipeThrough(new TextDecoderStream()).values();
      const ready = JSON.parse((await lines.next()).value as string);
      for (const host of ["127.0.0.1", "::1"]) {
        const conn = await Deno.connect({ hostname: host, port: ready.port });
        await conn.write(new TextEncoder().encode("compiled"));
        const buf = new Uint8Array(8);
        let got = 0;
        while (got < 8) got += (await conn.read(buf.subarray(got))) ?? 8;
        conn.close();
        assert.equal(new TextDecoder().decode(buf), "compiled");
      }
      child.kill("SIGTERM");
      for await (const _ of lines) { /* drain */ }
      const { code } = await child.status;
      if (Deno.build.os !== "windows") assert.equal(code, 0);
    } finally {
      await Deno.remove(compiledDir, { recursive: true });
    }
  },
});
