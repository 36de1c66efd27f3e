/**
 * What the test machine has: programs looked up on PATH without starting
 * them (the Windows build of Deno reports a missing program as an uncaught
 * rejection when asked to run it), and the flags every `deno run` of echod
 * gets from the environment.
 *
 * @module
 */

const WINDOWS = Deno.build.os === "windows";

/** Whether `program` is on PATH (with a Windows extension where needed). */
export function has(program: string): boolean {
  const path = Deno.env.get("PATH") ?? "";
  const extensions = WINDOWS ? ["", ".exe", ".cmd", ".bat"] : [""];
  for (const dir of path.split(WINDOWS ? ";" : ":")) {
    if (dir === "") continue;
    for (const extension of extensions) {
      try {
        if (Deno.statSync(`${dir}/${program}${extension}`).isFile) return true;
      } catch {
        // Not in this folder.
      }
    }
  }
  return false;
}

/**
 * Extra Deno flags for every echod the tests start, from
 * `ECHOD_TEST_DENO_FLAGS` (the Windows lane sets `--cached-only`: its Deno
 * runs from a module cache and must not try the network).
 */
export const DENO_FLAGS: string[] = (Deno.env.get("ECHOD_TEST_DENO_FLAGS") ?? "").split(" ")
  .filter((flag) => flag !== "");
