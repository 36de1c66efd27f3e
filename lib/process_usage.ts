/**
 * What another process uses: its resident memory and, on Linux, any
 * `/proc` file. For the tests and the benchmarks, which watch the echod
 * they started; echod itself never calls it. On Windows the working set
 * is read through FFI (`K32GetProcessMemoryInfo`; Wine has it too), which
 * takes `--allow-ffi`.
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

/**
 * Whether {@linkcode residentBytes} works here: on Linux (`/proc`), and on
 * Windows with `--allow-ffi`.
 */
export function canReadMemory(): boolean {
  if (Deno.build.os === "linux") return true;
  return Deno.build.os === "windows" &&
    Deno.permissions.querySync({ name: "ffi" }).state === "granted";
}

/** The resident set size of process `pid`, in bytes (Linux: VmRSS; Windows: the working set). */
export async function residentBytes(pid: number): Promise<number> {
  if (Deno.build.os === "windows") return workingSet(pid);
  const kb = /VmRSS:\s+(\d+) kB/.exec(await readProc(`/proc/${pid}/status`));
  if (!kb) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb[1]) * 1024;
}

// OpenProcess rights: enough to read a process's counters.
const PROCESS_QUERY_LIMITED_INFORMATION = 0x1000;
const PROCESS_VM_READ = 0x0010;

/** A process's working set, through kernel32 (loaded for the call, then closed). */
function workingSet(pid: number): number {
  const kernel32 = Deno.dlopen("kernel32.dll", {
    OpenProcess: { parameters: ["u32", "i32", "u32"], result: "pointer" },
    K32GetProcessMemoryInfo: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
    CloseHandle: { parameters: ["pointer"], result: "i32" },
    GetLastError: { parameters: [], result: "u32" },
  });
  try {
    const api = kernel32.symbols;
    const handle = api.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_VM_READ, 0, pid);
    if (handle === null) {
      throw new Error(`cannot open process ${pid}: Win32 error ${api.GetLastError()}`);
    }
    try {
      // PROCESS_MEMORY_COUNTERS: cb and PageFaultCount (two DWORDs), then eight SIZE_Ts,
      // PeakWorkingSetSize and WorkingSetSize first.
      const counters = new BigUint64Array(9);
      new Uint32Array(counters.buffer)[0] = counters.byteLength;
      if (!api.K32GetProcessMemoryInfo(handle, counters, counters.byteLength)) {
        throw new Error(`no memory counters for process ${pid}: Win32 error ${api.GetLastError()}`);
      }
      return Number(counters[2]);
    } finally {
      api.CloseHandle(handle);
    }
  } finally {
    kernel32.close();
  }
}
