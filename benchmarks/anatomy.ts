#!/usr/bin/env -S deno run --allow-net --allow-run --allow-read
/**
 * Where an idle connection's memory goes (`deno task bench:anatomy`, Linux).
 * Holds N connections (each echoed one byte) on echod and on the bare Deno
 * loop with echod's idle buffer size (256 B), and prints, per connection,
 * after a full garbage collection: RSS, JS heap used, the heap V8 has
 * reserved around it, the young generation's reserve, buffers outside the
 * heap, and the rest (native: Deno's resource and tokio's registration).
 * With `--snapshot` it instead takes heap snapshots through the inspector
 * and lists the JS objects each connection adds, by type, in bytes (the
 * inspector's own memory would distort the figures, so they are left out).
 *
 * Options: --connections N (default 10,000; 2,000 with --snapshot),
 * --snapshot.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { benchmark } from "../lib/bench/runner.ts";
import { BENCH_SERVE_FLAGS, untilEchoing } from "./serving.ts";

/** The figures `benchmarks/probe.ts` prints, in bytes. */
interface Figures {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  newSpace: number;
}

const ROOT = new URL("..", import.meta.url);
const { values } = parseArgs({
  args: Deno.args,
  options: { connections: { type: "string" }, snapshot: { type: "boolean" } },
});
const snapshot = values.snapshot ?? false;
const count = Number(values.connections ?? (snapshot ? 2_000 : 10_000));
const probe = ["--v8-flags=--expose-gc", "--preload", "benchmarks/probe.ts"];
const servers = [
  { name: "echod", args: ["main.ts", ...BENCH_SERVE_FLAGS, "--port"] },
  { name: "deno-loop 256 B", args: ["benchmarks/peers/deno_loop.ts", "256"] },
];

console.log(`per connection, ${count.toLocaleString("en-US")} held, after a full GC (bytes)\n`);
if (!snapshot) {
  console.log(
    "| server | RSS | JS heap used | heap reserved | of which young generation | buffers | native |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|");
}
for (const [i, server] of servers.entries()) {
  const port = 21_300 + i;
  const inspect = snapshot ? [`--inspect=127.0.0.1:${21_400 + i}`] : [];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", ...probe, ...inspect, ...server.args, String(port)],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  try {
    await untilEchoing(port, server.name);
    const before = await figures(child, lines);
    const objectsBefore = snapshot ? await heapObjects(21_400 + i) : undefined;
    let during = before;
    let objects: Map<string, number> | undefined;
    await benchmark({
      host: "127.0.0.1",
      port,
      mode: "hold",
      connections: count,
      connectTimeout: 30_000,
      async onHeld() {
        during = await figures(child, lines);
        if (snapshot) objects = await heapObjects(21_400 + i);
      },
    });
    const per = (key: keyof Figures) => Math.round((during[key] - before[key]) / count);
    const native = per("rss") - per("heapTotal") - per("external");
    if (!snapshot) {
      console.log(
        `| ${server.name} | ${per("rss")} | ${per("heapUsed")} | ${per("heapTotal")} | ${
          per("newSpace")
        } | ${per("external")} | ${native} |`,
      );
    }
    if (objects !== undefined && objectsBefore !== undefined) {
      printObjects(server.name, objectsBefore, objects);
    }
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

/** Asks the server for its figures (SIGWINCH) and reads the line it prints. */
async function figures(
  child: Deno.ChildProcess,
  lines: ReadableStreamDefaultReader<string>,
): Promise<Figures> {
  child.kill("SIGWINCH");
  let text = "";
  for (;;) {
    const { value, done } = await lines.read();
    if (done) throw new Error("the server exited");
    text += value;
    const match = /ANATOMY (\{.*\})\n/.exec(text);
    if (match) return JSON.parse(match[1]);
  }
}

/** Takes a heap snapshot through the inspector; self bytes by `type:name`. */
async function heapObjects(inspectPort: number): Promise<Map<string, number>> {
  const targets = await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json();
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve) => socket.onopen = resolve);
  const chunks: string[] = [];
  const taken = new Promise<void>((resolve) => {
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(message.params.chunk);
      else if (message.id === 2) resolve();
    };
  });
  socket.send(JSON.stringify({ id: 1, method: "HeapProfiler.collectGarbage" }));
  socket.send(JSON.stringify({ id: 2, method: "HeapProfiler.takeHeapSnapshot" }));
  await taken;
  socket.close();
  const heap = JSON.parse(chunks.join(""));
  const fields: string[] = heap.snapshot.meta.node_fields;
  const types: string[] = heap.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const bytes = new Map<string, number>();
  for (let i = 0; i < heap.nodes.length; i += fields.length) {
    const type = types[heap.nodes[i + typeAt]];
    // Strings, numbers and code by kind; objects by constructor.
    const name = /string|number|code|array|closure/.test(type)
      ? ""
      : String(heap.strings[heap.nodes[i + nameAt]]).slice(0, 40);
    const key = name === "" ? type : `${type} ${name}`;
    bytes.set(key, (bytes.get(key) ?? 0) + heap.nodes[i + sizeAt]);
  }
  return bytes;
}

function printObjects(name: string, before: Map<string, number>, after: Map<string, number>) {
  const rows = [...after].map(([key, size]) =>
    [key, (size - (before.get(key) ?? 0)) / count] as const
  )
    .filter(([, size]) => size >= 8)
    .sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((sum, [, size]) => sum + size, 0);
  console.log(`\n${name}: JS objects added per connection (${Math.round(total)} B in all)`);
  for (const [key, size] of rows.slice(0, 16)) {
    console.log(`  ${String(Math.round(size)).padStart(5)} B  ${key}`);
  }
  console.log("");
}
