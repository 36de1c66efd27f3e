/**
 * The `bench` command: runs the load generator, in Web Workers if asked,
 * and prints the report.
 *
 * @module
 */

import { benchmark, type BenchOptions, type BenchReport, mergeReports } from "./runner.ts";
import { formatReport, htmlReport } from "./report.ts";
import type { WorkerRequest } from "./load_worker.ts";
import { BENCH_DEFAULTS, type BenchConfig } from "./options.ts";
import { RuntimeError } from "../errors.ts";
import { requirePermission } from "../permissions.ts";
import { checkWorkerModule, startWorker } from "../web_worker.ts";

/**
 * Runs the benchmark; exit code 0 when every byte came back right and, with
 * a cut expected, at least one connection was cut so and none otherwise; 1 otherwise.
 */
export async function runBench(config: BenchConfig): Promise<number> {
  if (config.html !== undefined) {
    requirePermission(`--html ${config.html}`, [{ name: "write", path: config.html }]);
  }
  const options: BenchOptions = {
    host: config.target.host,
    port: config.target.port,
    mode: config.mode,
    connections: config.connections,
    size: config.size,
    window: config.window,
    duration: config.duration,
    count: config.count,
    rate: config.rate,
    warmup: config.warmup,
    connectTimeout: config.connectTimeout,
    expectGreeting: config.expectGreeting,
    expect: config.expect,
    stallTimeout: config.stallTimeout,
  };
  const live = Deno.stderr.isTerminal();
  const report = config.workers > 1
    ? await inWorkers(options, config.workers)
    : await benchmark({ ...options, onProgress: live ? showProgress : undefined });
  if (live) Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[K"));
  console.log(config.json ? JSON.stringify(report, null, 2) : formatReport(report));
  if (config.html !== undefined) {
    try {
      Deno.writeTextFileSync(config.html, htmlReport(report));
    } catch (error) {
      throw new RuntimeError(`cannot write ${config.html}: ${(error as Error).message}`);
    }
  }
  const expectedNever = report.expect !== null && report.cuts.asExpected === 0;
  if (expectedNever) {
    const flag = `--expect-${report.expect!.cut}`;
    console.error(`echod: no connection was cut as ${flag} expects: is the fault on this port?`);
  }
  return report.errorCount > 0 || expectedNever ? 1 : 0;
}

function showProgress(p: { elapsedMs: number; done: number; errors: number }): void {
  const line = `\r\x1b[K  ${(p.elapsedMs / 1_000).toFixed(0)}s  ${
    p.done.toLocaleString("en-US")
  } done  ${
    Math.round(p.done / (p.elapsedMs / 1_000)).toLocaleString("en-US")
  }/s  errors ${p.errors}`;
  Deno.stderr.writeSync(new TextEncoder().encode(line));
}

const WORKER_URL = new URL("./load_worker.ts", import.meta.url);

async function inWorkers(options: BenchOptions, workers: number): Promise<BenchReport> {
  checkWorkerModule(WORKER_URL);
  const connections = options.connections ?? BENCH_DEFAULTS.connections;
  const shares = Array.from(
    { length: workers },
    (_, i) => Math.floor(connections / workers) + (i < connections % workers ? 1 : 0),
  );
  const reports = await Promise.all(shares.map((share) => {
    const request: WorkerRequest = {
      ...options,
      connections: share,
      rate: (options.rate ?? 0) * share / connections,
      count: Math.ceil((options.count ?? 0) * share / connections),
    };
    const worker = startWorker(WORKER_URL);
    return new Promise<BenchReport>((resolve, reject) => {
      worker.onmessage = (event) => {
        worker.terminate();
        if (event.data.error) reject(new RuntimeError(event.data.error));
        else resolve(event.data.report);
      };
      worker.onerror = (event) => {
        event.preventDefault();
        worker.terminate();
        reject(new RuntimeError(`bench worker failed: ${event.message}`));
      };
      worker.postMessage(request);
    });
  }));
  return mergeReports(reports);
}
