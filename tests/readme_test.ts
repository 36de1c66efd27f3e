/**
 * The README and docs against the code: the options table against the
 * command line's own table (every serve option documented, with its short
 * flag, and nothing else), and every repository path, `deno task` and
 * sample log line they cite against the repository, `deno.json` and the
 * log message templates in `lib/`.
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

// The documents whose every cited path, task and sample log line must be true.
const DOCUMENTS = ["README.md", "CONTRIBUTING.md", ...docsFiles()];

function docsFiles(): string[] {
  return [...Deno.readDirSync(`${ROOT}/docs`)]
    .filter((entry) => entry.isFile && entry.name.endsWith(".md"))
    .map((entry) => `docs/${entry.name}`)
    .sort();
}

/** The code a document shows: its fenced blocks (with their info string) and inline code spans. */
function codeOf(markdown: string): { blocks: { info: string; text: string }[]; spans: string[] } {
  const blocks: { info: string; text: string }[] = [];
  const prose = markdown.replace(/^ *```(\S*)\n([\s\S]*?)^ *```$/gm, (_, info, text) => {
    blocks.push({ info, text });
    return "";
  });
  // A span may wrap onto the next line, as deno fmt leaves it.
  const spans = [...prose.matchAll(/`([^`]+)`/g)].map((match) => match[1].replaceAll("\n", " "));
  return { blocks, spans };
}

const REPO_PATH = /^(?:\.\/)?(?:lib|tests|scripts|deploy|docs|bench|\.ci|\.github)\/[\w./-]*$/;

/** Repository paths a document cites: words of its code that look like one (no placeholders). */
function citedPaths(markdown: string): string[] {
  const { blocks, spans } = codeOf(markdown);
  const words = [...spans, ...blocks.map((block) => block.text)].flatMap((code) =>
    code.split(/[\s,;()'"=]+/)
  );
  return [
    ...new Set(words.map((word) => word.replace(/[.:]+$/, "")).filter((w) => REPO_PATH.test(w))),
  ];
}

/** Relative links (`[text](path)`) in a document, resolved against its folder. */
function linkedPaths(markdown: string, file: string): string[] {
  const folder = file.includes("/") ? file.slice(0, file.lastIndexOf("/") + 1) : "";
  return [...markdown.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((match) => match[1].replace(/#.*$/, ""))
    .filter((target) => target !== "" && !/^[a-z]+:/.test(target))
    .map((target) => new URL(target, `file:///${folder}`).pathname.slice(1));
}

function exists(path: string): boolean {
  try {
    Deno.statSync(`${ROOT}/${path}`);
    return true;
  } catch {
    return false;
  }
}

Deno.test("every repository path the README and docs cite exists", async () => {
  const missing: string[] = [];
  let checked = 0;
  for (const file of DOCUMENTS) {
    const markdown = await Deno.readTextFile(`${ROOT}/${file}`);
    for (const path of [...citedPaths(markdown), ...linkedPaths(markdown, file)]) {
      checked++;
      if (!exists(path)) missing.push(`${file}: ${path}`);
    }
  }
  assert.ok(checked > 50, `only ${checked} paths found: is the extraction broken?`);
  assert.deepEqual(missing, [], "paths cited but not in the repository");
});

Deno.test("every deno task the README and docs cite is in deno.json", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  const tasks = new Set(Object.keys(config.tasks));
  const unknown: string[] = [];
  let checked = 0;
  for (const file of DOCUMENTS) {
    const markdown = await Deno.readTextFile(`${ROOT}/${file}`);
    for (const [, name] of markdown.matchAll(/\bdeno(?:@[\d.]+)? task ([a-z][a-z0-9:-]*)/g)) {
      checked++;
      if (!tasks.has(name)) unknown.push(`${file}: deno task ${name}`);
    }
  }
  assert.ok(checked > 10, `only ${checked} tasks found: is the extraction broken?`);
  assert.deepEqual(unknown, [], "tasks cited but not in deno.json");
});

/**
 * The log message templates in `lib/`: string literals joined by `+`, where
 * a `(condition ? "text" : "")` part is optional text. A placeholder stands
 * for one word (no spaces, possibly empty), or anything when it ends the
 * template (an error's or a reason's own words). Templates with hardly
 * any text of their own are left out: they would match any line.
 */
async function messageTemplates(): Promise<RegExp[]> {
  const literal = String.raw`"(?:[^"\\\n]|\\.)*"`;
  const optional = String.raw`\(\s*[^()"?]*(?:"[^"]*"[^()"?]*)*\?\s*${literal}\s*:\s*""\s*\)`;
  const part = `(?:${literal}|${optional})`;
  const chain = new RegExp(`${part}(?:\\s*\\+\\s*${part})*`, "g");
  const templates: RegExp[] = [];
  for (const file of await sourceFiles(`${ROOT}/lib`)) {
    const source = await Deno.readTextFile(file);
    for (const [text] of source.matchAll(chain)) {
      if (!text.includes("{")) continue;
      // A template of placeholders alone ("{message}") would match any line.
      if (text.replace(/\{\w+\}|[\s"+()?:]/g, "").length < 8) continue;
      let pattern = "";
      for (const [piece] of text.matchAll(new RegExp(part, "g"))) {
        const inner = JSON.parse(
          piece.startsWith("(") ? piece.match(new RegExp(`\\?\\s*(${literal})`))![1] : piece,
        );
        const body = escape(inner);
        pattern += piece.startsWith("(") ? `(?:${body})?` : body;
      }
      pattern = pattern.replace(/\\\{\w+\\\}$/, "(.*)").replace(/\\\{\w+\\\}/g, "(\\S*)");
      templates.push(new RegExp(`^${pattern}$`));
    }
  }
  return templates;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

async function sourceFiles(folder: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(folder)) {
    const path = `${folder}/${entry.name}`;
    if (entry.isDirectory) files.push(...await sourceFiles(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

const TEXT_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[(ERR|WRN|INF|DBG)\] echod: (.*)$/;
const LEVELS = new Set(["ERROR", "WARNING", "INFO", "DEBUG"]);

/** The message of one sample line, or why the line is not in either log format. */
function sampleMessage(line: string): { message: string } | { error: string } {
  if (line.startsWith("{")) {
    const record = JSON.parse(line);
    if (!LEVELS.has(record.level) || typeof record["@timestamp"] !== "string") {
      return { error: "not a JSON log record (@timestamp, level)" };
    }
    return { message: String(record.message) };
  }
  const text = TEXT_LINE.exec(line);
  return text === null ? { error: "not a text log line" } : { message: text[2] };
}

Deno.test("every sample log line (in a ```log block) is in the format echod writes", async () => {
  const templates = await messageTemplates();
  assert.ok(templates.length > 20, `only ${templates.length} templates found in lib/`);
  const wrong: string[] = [];
  let checked = 0;
  for (const file of DOCUMENTS) {
    const { blocks } = codeOf(await Deno.readTextFile(`${ROOT}/${file}`));
    for (const block of blocks.filter((b) => b.info === "log")) {
      for (const line of block.text.split("\n").filter((l) => l.trim() !== "")) {
        checked++;
        const sample = sampleMessage(line);
        if ("error" in sample) wrong.push(`${file}: ${sample.error}: ${line}`);
        else if (!templates.some((t) => t.test(sample.message))) {
          wrong.push(`${file}: no message template in lib/ matches: ${sample.message}`);
        }
      }
    }
  }
  assert.ok(checked >= 5, `only ${checked} sample log lines found`);
  assert.deepEqual(wrong, [], "sample log lines echod does not write");
});
