#!/usr/bin/env -S deno run --allow-run --allow-read --allow-write
/**
 * Builds echod as a single executable with `deno compile`.
 *
 *   deno task compile                     dist/echod for this host
 *   deno task compile --output PATH       somewhere else
 *   deno task compile:all                 dist/echod-<target>[.exe] for every release target
 *   deno task compile --target T          one target
 *
 * Permissions baked in, and why: --allow-net to serve; --allow-read for
 * worker modules, TLS files and the service command's checks; --allow-write
 * for --log-file, bench --html and the service files; --allow-run only for
 * systemctl, launchctl and netsh.exe (the Windows firewall rule);
 * --allow-sys=hostname for --greeting. Windows builds add --allow-ffi, for
 * `echod service` to talk to the Service Control Manager. No env access.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** The release targets. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

/** The flags of a build for `target` (this host when undefined). */
export function compileFlags(target: string | undefined): string[] {
  const windows = target === undefined ? Deno.build.os === "windows" : target.includes("windows");
  return windows ? [...COMPILE_FLAGS, "--allow-ffi"] : COMPILE_FLAGS;
}

/** Flags every build gets (deno.json adds the unstable `net` feature for SO_REUSEPORT). */
export const COMPILE_FLAGS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-run=systemctl,launchctl,netsh.exe",
  "--allow-sys=hostname",
  "--include",
  "lib/serve/worker_thread.ts",
  "--include",
  "lib/bench/load_worker.ts",
];

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      all: { type: "boolean" },
      target: { type: "string" },
      output: { type: "string" },
    },
  });
  const builds: { target?: string; output: string }[] = values.all
    ? TARGETS.map((target) => ({
      target,
      output: `dist/echod-${target}${target.includes("windows") ? ".exe" : ""}`,
    }))
    : [{ target: values.target, output: values.output ?? "dist/echod" }];
  for (const build of builds) {
    const args = [
      "compile",
      ...compileFlags(build.target),
      ...(build.target ? ["--target", build.target] : []),
      "--output",
      build.output,
      "main.ts",
    ];
    console.log(`deno ${args.join(" ")}`);
    const status = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: new URL("..", import.meta.url),
    })
      .spawn().status;
    if (!status.success) {
      console.error(`compile: building ${build.output} failed`);
      Deno.exit(1);
    }
  }
}
