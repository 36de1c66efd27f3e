#!/usr/bin/env -S deno run --allow-read
/**
 * Prints `N passed, N failed, N skipped` over one or more `deno test
 * --junit-path` reports, for CI. A missing report (a run that did not
 * finish) counts as one failure. Exits 1 when anything failed.
 *
 * @module
 */

const paths = Deno.args.length > 0 ? Deno.args : [".test-results/junit.xml"];
let passed = 0;
let failed = 0;
let skipped = 0;
for (const path of paths) {
  let xml: string;
  try {
    xml = await Deno.readTextFile(path);
  } catch {
    console.log(`no test report at ${path}: that test run did not finish`);
    failed++;
    continue;
  }
  for (const body of xml.split("<testcase ").slice(1)) {
    const end = body.indexOf("</testcase>");
    const inner = end === -1 ? "" : body.slice(0, end);
    if (/<(failure|error)\b/.test(inner)) failed++;
    else if (/<skipped\b/.test(inner)) skipped++;
    else passed++;
  }
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
Deno.exit(failed > 0 ? 1 : 0);
