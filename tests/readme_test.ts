/**
 * The README's options table against the command line's own table: every
 * serve option is documented, with its short flag, and nothing else is.
 */

import assert from "node:assert/strict";
import { SERVE } from "../lib/cli/serve.ts";
import { ROOT } from "./_echod.ts";

Deno.test("README's options table lists exactly the serve options, short flags included", async () => {
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const start = readme.indexOf("## Options");
  const table = readme.slice(start, readme.indexOf("\n\n", readme.indexOf("| option", start)));
  const documented = new Set<string>();
  const defaults = new Map<string, string>();
  for (const row of table.split("\n").slice(2)) {
    const [, first = "", second = ""] = row.split("|");
    for (const [, flag] of first.matchAll(/`([^`]+)`/g)) {
      for (let word of flag.split(/[ ,]+/)) {
        if (!word.startsWith("-")) continue;
        word = word.replace(/\[?=.*$/, ""); // --greeting[=TEMPLATE]
        documented.add(word);
        defaults.set(word, second.replaceAll("`", "").trim());
      }
    }
  }
  const expected = new Set<string>();
  for (const option of SERVE.options) {
    expected.add(`--${option.name}`);
    if (option.short !== undefined) expected.add(`-${option.short}`);
  }
  const missing = [...expected].filter((f) => !documented.has(f));
  const extra = [...documented].filter((f) => !expected.has(f));
  assert.deepEqual(missing, [], "serve options missing from the README's table");
  assert.deepEqual(extra, [], "options in the README's table that serve does not have");
  // A default the help states must be the README's too.
  for (const option of SERVE.options) {
    const stated = /\(default: ([^)]+)\)/.exec(option.help)?.[1];
    if (stated === undefined || /^\d+$/.test(stated) === false && !/^[\w.]+$/.test(stated)) {
      continue;
    }
    assert.equal(defaults.get(`--${option.name}`), stated, `the default of --${option.name}`);
  }
});
