/**
 * The workflow lint: a retired runner image fails it (a release whose
 * matrix names one never builds), a current one passes.
 */

import assert from "node:assert/strict";
import { DENO_FLAGS } from "./_programs.ts";
import { ROOT } from "./_echod.ts";

function workflow(runner: string): string {
  return [
    "name: release",
    "on: push",
    "jobs:",
    "  build:",
    "    runs-on: ${{ matrix.runner }}",
    "    strategy:",
    "      matrix:",
    "        include:",
    `          - runner: ${runner}`,
    "    steps:",
    "      - run: echo built",
    "",
  ].join("\n");
}

async function lintWorkflow(runner: string): Promise<{ code: number; stdout: string }> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/release.yml`, workflow(runner));
    const output = await new Deno.Command(Deno.execPath(), {
      // The development lock: deno.lock holds only what serving needs.
      args: [
        "run",
        ...DENO_FLAGS,
        "--lock=deno.dev.lock",
        "--allow-read",
        "scripts/lint_workflows.ts",
        dir,
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "inherit",
    }).output();
    return { code: output.code, stdout: new TextDecoder().decode(output.stdout) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("workflow lint fails on a retired runner image (macos-13) and names its successor", async () => {
  const { code, stdout } = await lintWorkflow("macos-13");
  assert.equal(code, 1, stdout);
  assert.match(stdout, /runner "macos-13" was retired by GitHub .*macos-15-intel/);
});

Deno.test("workflow lint fails on retired images actionlint still lists (ubuntu-20.04, windows-2019)", async () => {
  for (const runner of ["ubuntu-20.04", "windows-2019"]) {
    const { code, stdout } = await lintWorkflow(runner);
    assert.equal(code, 1, stdout);
    assert.match(stdout, new RegExp(`runner "${runner}" was retired`));
  }
});

Deno.test("workflow lint passes the current Intel macOS runner (macos-15-intel)", async () => {
  const { code, stdout } = await lintWorkflow("macos-15-intel");
  assert.equal(code, 0, stdout);
  assert.match(stdout, /1 workflows, 0 problems/);
});
