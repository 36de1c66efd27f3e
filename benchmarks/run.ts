#!/usr/bin/env -S deno run --allow-net --allow-run --allow-read --allow-write=benchmarks/results,benchmarks/.build
/**
 * The benchmark suite (`deno task bench`): echod against the peers a user
 * would pick instead, on loopback, interleaved in one run (each round runs
 * every peer once per case, A B C A B C …) and summarised by medians.
 *
 * Peers: echod (`-w 2` too), Node `s.pipe(s)`, Deno `pipeTo`, the bare
 * Deno loop (`deno-loop`), and when their tools are here Go `io.Copy`
 * (`go`), a single-threaded C epoll server (`c-epoll`, the near-limit
 * reference) and socat.
 *
 * Besides the raw rate it reports each server's efficiency, work per
 * second of the server process's own CPU (user + system, from
 * /proc/PID/stat), because on a small machine the load generator competes
 * with the server for cores and squeezes raw ratios toward 1.
 *
 * Options: --rounds N (default 3), --quick (1 round, 2 s cases, 5,000
 * held), --only NAME[,NAME] (cases), --peers NAME[,NAME], --baseline DIR
 * (also runs echod from another checkout, as the peer `echod-base`: a
 * change measured side by side with what it changes, e.g.
 * `git worktree add /tmp/base main`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { benchmark, type BenchOptions } from "../lib/bench/runner.ts";
import { runProgram } from "../lib/process.ts";
import { readProc, residentBytes } from "../lib/process_usage.ts";
import { VERSION } from "../lib/version.ts";
import { BENCH_SERVE_FLAGS, untilEchoing } from "./serving.ts";

interface Peer {
  name: string;
  command: string[];
  cwdRelative?: boolean;
}

interface Running {
  peer: Peer;
  port: number;
  child: Deno.ChildProcess;
}

interface Sample {
  rate: number;
  perCpuSecond: number;
  cpuSeconds: number;
  errors: number;
  p50?: number;
  p99?: number;
}

interface CaseResult {
  name: string;
  unit: string;
  samples: Record<string, Sample[]>;
}

interface Case {
  name: string;
  unit: string;
  options: Partial<BenchOptions>;
  /** Peers that cannot take this case (socat forks a process per connection). */
  skip?: string[];
}

/** What the command line asked for. */
interface Settings {
  rounds: number;
  caseSeconds: number;
  holdCount: number;
  /** Case names (prefixes), or every case. */
  only?: string[];
  /** Peer names, or every peer. */
  peers?: string[];
  /** Another checkout whose echod runs as `echod-base`. */
  baseline?: string;
}

/** Held connections per peer. */
type HoldResults = Record<string, { rssPerConn: number[]; held: number[]; errors: number[] }>;

/** Everything one run measured, as saved. */
interface Run {
  machine: string;
  settings: Settings;
  peers: Peer[];
  results: CaseResult[];
  hold: HoldResults;
  startup: Record<string, number[]>;
}

const ROOT = new URL("..", import.meta.url);
const TICKS_PER_SECOND = 100; // CLK_TCK on Linux
// Built once, so the run measures the server, not the compiler.
const BUILD = "benchmarks/.build";

const CASES: readonly Case[] = [
  { name: "rr 50 × 512 B", unit: "msg", options: { mode: "rr", connections: 50, size: 512 } },
  {
    name: "rr 1,000 × 64 B",
    unit: "msg",
    options: { mode: "rr", connections: 1_000, size: 64 },
    skip: ["socat"],
  },
  { name: "stream 1 conn", unit: "MB", options: { mode: "stream", connections: 1 } },
  { name: "stream 8 conns", unit: "MB", options: { mode: "stream", connections: 8 } },
  {
    name: "connect",
    unit: "conn",
    options: { mode: "connect", connections: 10 },
    skip: ["socat"],
  },
];

const USAGE = "usage: deno task bench [--rounds N] [--quick] [--only CASE,…] [--peers NAME,…] " +
  "[--baseline DIR]";

if (import.meta.main) await main(Deno.args);

/** Runs the suite and saves its results. */
async function main(args: string[]): Promise<void> {
  const settings = parseSettings(args);
  const peers = await choosePeers(settings);
  const machine = await describeMachine();
  console.log(`echod ${VERSION} benchmark, ${new Date().toISOString()}`);
  console.log(`machine: ${machine}`);
  console.log(`peers: ${peers.map((p) => p.name).join(", ")}; rounds: ${settings.rounds}\n`);
  const cases = settings.only === undefined
    ? CASES
    : CASES.filter((c) => settings.only!.some((o) => c.name.startsWith(o)));
  const results = await runCases(peers, cases, settings);
  // Held connections and start-up time need a fresh process each.
  const hold = wanted(settings, "hold") ? await holdConnections(peers, settings) : {};
  const startup = wanted(settings, "startup") ? await startUp(peers, settings) : {};
  const run: Run = { machine, settings, peers, results, hold, startup };
  const summary = summarize(run);
  console.log(`\n${summary}`);
  await save(run, summary);
}

/** The options, or a one-line usage error and exit 2 (this is a command, not a library). */
function parseSettings(args: string[]): Settings {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        rounds: { type: "string" },
        quick: { type: "boolean" },
        only: { type: "string" },
        peers: { type: "string" },
        baseline: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n${USAGE}`);
    Deno.exit(2);
  }
  if (values.help) {
    console.log(`${USAGE}\n(the module notes of benchmarks/run.ts say what each option does)`);
    Deno.exit(0);
  }
  const quick = values.quick ?? false;
  const rounds = Number(values.rounds ?? (quick ? 1 : 3));
  if (!Number.isInteger(rounds) || rounds < 1) {
    console.error(`bench: --rounds ${values.rounds} is not a whole number of at least 1\n${USAGE}`);
    Deno.exit(2);
  }
  return {
    rounds,
    caseSeconds: quick ? 2 : 5,
    holdCount: quick ? 5_000 : 10_000,
    only: values.only?.split(","),
    peers: values.peers?.split(","),
    baseline: values.baseline,
  };
}

/** Whether the hold or start-up measurement runs (every one does without --only). */
function wanted(settings: Settings, name: string): boolean {
  return settings.only === undefined || settings.only.includes(name);
}

// echod as the bench runs it: no limits, quiet, on the port appended last.
function echodPeer(name: string, workers: number, main = "main.ts"): Peer {
  // Workers load their module from disk, which takes read permission.
  const permissions = workers > 1 ? ["--allow-net", "--allow-read"] : ["--allow-net"];
  return {
    name,
    command: [
      Deno.execPath(),
      "run",
      ...permissions,
      main,
      "--workers",
      String(workers),
      ...BENCH_SERVE_FLAGS,
      "--port",
    ],
  };
}

/** Every peer this machine can run (building the compiled ones), narrowed to --peers. */
async function choosePeers(settings: Settings): Promise<Peer[]> {
  const all: Peer[] = [
    echodPeer("echod", 1),
    ...(settings.baseline === undefined
      ? []
      : [echodPeer("echod-base", 1, `${settings.baseline}/main.ts`)]),
    echodPeer("echod-w2", 2),
    { name: "node", command: ["node", "benchmarks/peers/node_pipe.mjs"] },
    {
      name: "deno-pipeTo",
      command: [Deno.execPath(), "run", "--allow-net", "benchmarks/peers/deno_pipeto.ts"],
    },
    {
      name: "deno-loop",
      command: [Deno.execPath(), "run", "--allow-net", "benchmarks/peers/deno_loop.ts"],
    },
  ];
  if (await has("go")) {
    all.push(
      ...await built(
        "go",
        "go",
        ["build", "-o", `${BUILD}/go_echo`, "benchmarks/peers/go_echo.go"],
        {
          GOCACHE: `${ROOT.pathname}${BUILD}/cache`,
          GOPATH: `${ROOT.pathname}${BUILD}/gopath`,
        },
      ),
    );
  }
  if (await has("cc")) {
    // The near-limit reference: one thread of C on epoll.
    all.push(
      ...await built("c-epoll", "cc", [
        "-O2",
        "-o",
        `${BUILD}/c_epoll`,
        "benchmarks/peers/c_epoll.c",
      ]),
    );
  }
  if (await has("socat")) {
    all.push({
      name: "socat",
      command: ["sh", "-c", 'exec socat "TCP6-LISTEN:$0,fork,reuseaddr,ipv6only=0" PIPE'],
    });
  }
  return settings.peers === undefined ? all : all.filter((p) => settings.peers!.includes(p.name));
}

/** Every case, round after round, each round running every peer once (interleaved). */
async function runCases(
  peers: Peer[],
  cases: readonly Case[],
  settings: Settings,
): Promise<CaseResult[]> {
  const running: Running[] = [];
  const results: CaseResult[] = [];
  try {
    for (const [i, peer] of peers.entries()) running.push(await start(peer, 21_000 + i));
    for (const c of cases) {
      const result: CaseResult = { name: c.name, unit: c.unit, samples: {} };
      results.push(result);
      for (let round = 0; round < settings.rounds; round++) {
        for (const server of running) {
          if (c.skip?.includes(server.peer.name)) continue;
          const sample = await measure(server, c, settings.caseSeconds);
          (result.samples[server.peer.name] ??= []).push(sample);
          console.log(
            `${c.name.padEnd(16)} round ${round + 1} ${server.peer.name.padEnd(12)} ` +
              `${fmt(sample.rate)} ${c.unit}/s, ${fmt(sample.perCpuSecond)} ${c.unit}/CPU-s, ` +
              `server CPU ${sample.cpuSeconds.toFixed(2)} s, errors ${sample.errors}`,
          );
        }
      }
    }
  } finally {
    for (const server of running) await stop(server);
  }
  return results;
}

/** Resident memory per held idle connection, each peer in a fresh process. */
async function holdConnections(peers: Peer[], settings: Settings): Promise<HoldResults> {
  const { holdCount } = settings;
  const hold: HoldResults = {};
  for (let round = 0; round < settings.rounds; round++) {
    for (const [i, peer] of peers.entries()) {
      // socat forks a process per connection; Go's io.Copy between two TCP
      // connections splices through a pipe per connection (3 descriptors
      // each): 10,000 held would need 30,000 descriptors, past this
      // machine's limit of 20,000, and the example's accept loop then spins.
      if (peer.name === "socat" || peer.name === "go") continue;
      const server = await start(peer, 21_100 + i);
      try {
        const before = await residentBytes(server.child.pid);
        let during = 0;
        const report = await benchmark({
          host: "127.0.0.1",
          port: server.port,
          mode: "hold",
          connections: holdCount,
          connectTimeout: 30_000,
          async onHeld() {
            // Let the allocator settle before reading RSS.
            await new Promise((r) => setTimeout(r, 500));
            during = await residentBytes(server.child.pid);
          },
        });
        const entry = hold[peer.name] ??= { rssPerConn: [], held: [], errors: [] };
        entry.rssPerConn.push((during - before) / holdCount);
        entry.held.push(report.operations);
        entry.errors.push(report.errorCount);
        console.log(
          `hold ${fmt(holdCount)}      round ${round + 1} ${peer.name.padEnd(12)} ` +
            `${fmt(report.operations)} held, ${
              ((during - before) / holdCount / 1024).toFixed(2)
            } ` +
            `KiB RSS per connection, errors ${report.errorCount}`,
        );
      } finally {
        await stop(server);
      }
    }
  }
  return hold;
}

/** Milliseconds from spawning each peer to its first echo (at least three rounds). */
async function startUp(peers: Peer[], settings: Settings): Promise<Record<string, number[]>> {
  const startup: Record<string, number[]> = {};
  for (let round = 0; round < Math.max(settings.rounds, 3); round++) {
    for (const [i, peer] of peers.entries()) {
      const began = performance.now();
      const server = await start(peer, 21_200 + i);
      (startup[peer.name] ??= []).push(performance.now() - began);
      await stop(server);
    }
  }
  return startup;
}

function summarize(run: Run): string {
  const { results, hold, startup } = run;
  const { holdCount } = run.settings;
  const names = run.peers.map((p) => p.name);
  // echod's efficiency as a ratio to each other peer's, in the same run.
  const others = names.includes("echod") ? names.filter((n) => n !== "echod") : [];
  const lines = [
    `| case | ${names.map((n) => `${n} rate`).join(" | ")} | ${
      names.map((n) => `${n} per server CPU-s`).join(" | ")
    } |${others.map((n) => ` echod/${n} per CPU-s |`).join("")}`,
    `|---|${names.map(() => "---:").join("|")}|${names.map(() => "---:").join("|")}|${
      others.map(() => "---:|").join("")
    }`,
  ];
  for (const r of results) {
    const rate = names.map((n) => cell(r.samples[n], "rate", r.unit));
    const eff = names.map((n) => cell(r.samples[n], "perCpuSecond", r.unit));
    const ratios = others.map((n) => ` ${ratioOf(r.samples.echod, r.samples[n])} |`).join("");
    lines.push(`| ${r.name} | ${rate.join(" | ")} | ${eff.join(" | ")} |${ratios}`);
  }
  const out = [lines.join("\n")];
  if (Object.keys(hold).length > 0) {
    out.push(
      [
        `| hold ${fmt(holdCount)} idle connections | ${names.map((n) => n).join(" | ")} |`,
        `|---|${names.map(() => "---:").join("|")}|`,
        `| RSS per connection | ${
          names.map((n) => hold[n] ? `${(median(hold[n].rssPerConn) / 1024).toFixed(2)} KiB` : "—")
            .join(" | ")
        } |`,
        `| held and echoing | ${
          names.map((n) => (hold[n] ? fmt(Math.min(...hold[n].held)) : "—")).join(" | ")
        } |`,
      ].join("\n"),
    );
  }
  if (Object.keys(startup).length > 0) {
    out.push(
      [
        `| start to first echo | ${names.join(" | ")} |`,
        `|---|${names.map(() => "---:").join("|")}|`,
        `| median | ${
          names.map((n) => (startup[n] ? `${median(startup[n]).toFixed(0)} ms` : "—")).join(" | ")
        } |`,
      ].join("\n"),
    );
  }
  return out.join("\n\n");
}

function cell(samples: Sample[] | undefined, key: "rate" | "perCpuSecond", unit: string): string {
  if (!samples || samples.length === 0) return "—";
  const value = median(samples.map((s) => s[key]));
  const errors = samples.reduce((a, s) => a + s.errors, 0);
  return `${fmt(value)} ${unit}/s${errors > 0 ? ` (${errors} errors!)` : ""}`;
}

function ratioOf(a: Sample[] | undefined, b: Sample[] | undefined): string {
  if (!a || !b) return "—";
  return `${
    (median(a.map((s) => s.perCpuSecond)) / median(b.map((s) => s.perCpuSecond))).toFixed(2)
  }×`;
}

async function measure(server: Running, c: Case, caseSeconds: number): Promise<Sample> {
  const options: BenchOptions = {
    host: "127.0.0.1",
    port: server.port,
    duration: caseSeconds * 1_000,
    warmup: 1_000,
    ...c.options,
  };
  // Server CPU over the measured window only, not the warm-up.
  let cpuAtStart = Promise.resolve(0);
  let cpuAtEnd = Promise.resolve(0);
  const report = await benchmark({
    ...options,
    onPhase(phase) {
      if (phase === "measuring") cpuAtStart = cpuSeconds(server.child.pid);
      else cpuAtEnd = cpuSeconds(server.child.pid);
    },
  });
  const cpu = (await cpuAtEnd) - (await cpuAtStart);
  const seconds = report.elapsedMs / 1_000;
  const work = c.unit === "MB" ? report.verifiedBytes / 1e6 : report.operations;
  return {
    rate: work / seconds,
    perCpuSecond: cpu > 0 ? work / cpu : 0,
    cpuSeconds: cpu,
    errors: report.errorCount,
    p50: report.latency.p50,
    p99: report.latency.p99,
  };
}

async function start(peer: Peer, port: number): Promise<Running> {
  const [program, ...args] = peer.command;
  const child = new Deno.Command(program, {
    args: [...args, String(port)],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  await untilEchoing(port, peer.name);
  return { peer, port, child };
}

async function stop(server: Running): Promise<void> {
  try {
    server.child.kill("SIGKILL");
  } catch {
    // Already gone.
  }
  await server.child.status;
}

/**
 * CPU seconds (user + system) used by `pid` and every process under it:
 * socat, for one, serves each connection from a forked child. Live
 * descendants count through their own times, exited ones through the
 * parent's cutime/cstime.
 */
async function cpuSeconds(pid: number): Promise<number> {
  const all = await new Deno.Command("sh", {
    args: ["-c", "cat /proc/[0-9]*/stat 2>/dev/null"],
    stdout: "piped",
  }).output();
  const procs = new Map<number, { ppid: number; ticks: number; reaped: number }>();
  for (const line of new TextDecoder().decode(all.stdout).split("\n")) {
    const close = line.lastIndexOf(")");
    if (close === -1) continue;
    const id = Number(line.slice(0, line.indexOf(" ")));
    // Fields after the parenthesised command name: ppid is 4th, utime 14th … cstime 17th.
    const f = line.slice(close + 2).split(" ");
    procs.set(id, {
      ppid: Number(f[1]),
      ticks: Number(f[11]) + Number(f[12]),
      reaped: Number(f[13]) + Number(f[14]),
    });
  }
  let ticks = procs.get(pid)?.reaped ?? 0;
  const stack = [pid];
  while (stack.length > 0) {
    const id = stack.pop()!;
    ticks += procs.get(id)?.ticks ?? 0;
    for (const [child, p] of procs) if (p.ppid === id) stack.push(child);
  }
  return ticks / TICKS_PER_SECOND;
}

/** Builds a peer (its output is the `-o` argument): the peer, or none with the reason printed. */
async function built(
  name: string,
  tool: string,
  args: string[],
  env?: Record<string, string>,
): Promise<Peer[]> {
  await Deno.mkdir(BUILD, { recursive: true });
  const output = await runProgram(tool, args, { cwd: ROOT.pathname, env });
  if (!output.success) {
    console.log(`${name} peer left out: ${tool} failed: ${output.stderr}`);
    return [];
  }
  return [{ name, command: [`${ROOT.pathname}${args[args.indexOf("-o") + 1]}`] }];
}

async function has(program: string): Promise<boolean> {
  try {
    return (await new Deno.Command("sh", { args: ["-c", `command -v ${program}`] }).output())
      .success;
  } catch {
    return false;
  }
}

async function describeMachine(): Promise<string> {
  const cpu = /model name\s*:\s*(.*)/.exec(await readProc("/proc/cpuinfo"))?.[1] ?? "unknown CPU";
  const cores = navigator.hardwareConcurrency;
  const node = await new Deno.Command("node", { args: ["--version"] }).output()
    .then((o) => new TextDecoder().decode(o.stdout).trim(), () => "none");
  return `${cpu}, ${cores} cores, ${Deno.build.target}, deno ${Deno.version.deno}, node ${node}`;
}

async function save(run: Run, table: string): Promise<void> {
  const { machine, results, hold, startup } = run;
  const { rounds, caseSeconds, holdCount } = run.settings;
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const dir = new URL("results/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  const json = {
    version: VERSION,
    machine,
    rounds,
    caseSeconds,
    holdCount,
    results,
    hold,
    startup,
  };
  await Deno.writeTextFile(new URL(`${stamp}.json`, dir), JSON.stringify(json, null, 2) + "\n");
  const md = `# echod benchmark ${new Date().toISOString()}\n\n` +
    `Machine: ${machine}. Rounds: ${rounds}, ${caseSeconds} s per case after 1 s warm-up; ` +
    `medians. Command: \`deno task bench\`.\n\n${table}\n`;
  await Deno.writeTextFile(new URL("latest.md", dir), md);
  console.log(`\nsaved benchmarks/results/${stamp}.json and benchmarks/results/latest.md`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}
