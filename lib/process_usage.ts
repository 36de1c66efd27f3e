/**
 * What another process uses: its resident memory and, on Linux, any
 * `/proc` file. For the tests and the benchmarks, which watch the echod
 * they started.
 *
 * @module
 */

import { runProgram } from "./process.ts";

/**
 * The text of a `/proc` file (Linux). Deno grants `/proc` only with
 * `--allow-all`; running `cat` needs just `--allow-run`.
 */
export async function readProc(path: string): Promise<string> {
  return (await runProgram("cat", [path])).stdout;
}

/** The resident set size of process `pid`, in bytes (Linux: VmRSS). */
export async function residentBytes(pid: number): Promise<number> {
  const kb = /VmRSS:\s+(\d+) kB/.exec(await readProc(`/proc/${pid}/status`));
  if (!kb) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb[1]) * 1024;
}
