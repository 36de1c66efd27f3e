#!/usr/bin/env -S deno run --allow-read
/**
 * Prints `N passed, N failed, N skipped` from a `deno test --junit-path`
 * report, for CI. Exits 1 when a test failed or the report is missing.
 *
 * @module
 */

const path = Deno.args[0] ?? ".test-results/junit.xml";
let xml: string;
try {
  xml = await Deno.readTextFile(path);
} catch {
  console.log(`no test report at ${path}: the test run did not finish`);
  console.log("0 passed, 1 failed");
  Deno.exit(1);
}
const cases = xml.split("<testcase ").slice(1);
let failed = 0;
let skipped = 0;
for (const body of cases) {
  const end = body.indexOf("</testcase>");
  const inner = end === -1 ? "" : body.slice(0, end);
  if (/<(failure|error)\b/.test(inner)) failed++;
  else if (/<skipped\b/.test(inner)) skipped++;
}
const passed = cases.length - failed - skipped;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
Deno.exit(failed > 0 ? 1 : 0);
