/**
 * Touching the system for `echod service`: permission checks, writing and
 * removing definition files, and running the service manager.
 *
 * @module
 */

import { RuntimeError } from "../errors.ts";
import { requirePermission } from "../permissions.ts";
import { runProgram } from "../process.ts";
import type { ControlAction } from "./spec.ts";

/** What start, stop and restart say when there is no service to control. */
export const NOT_INSTALLED =
  "echod is not installed as a service: install it first with echod service install";

/** Prints the one line a successful start, stop or restart ends with. */
export function reportControl(action: ControlAction, detail = ""): void {
  const done = { start: "running", stop: "stopped", restart: "restarted" }[action];
  console.log(`echod is ${done}${detail}`);
}

/** Under `deno run`, says which flags are missing before anything is changed. */
export function needPermissions(action: string, path: string | undefined, program: string): void {
  const changes = (action === "install" || action === "uninstall") && path !== undefined;
  requirePermission(`echod service ${action}`, [
    ...(changes ? [{ name: "write" as const, path }] : []),
    { name: "run", command: program },
  ]);
}

/** Writes `text` to `path` (making `dir`) unless it holds that already; returns whether it wrote. */
export async function writeIfChanged(dir: string, path: string, text: string): Promise<boolean> {
  let previous: string | undefined;
  try {
    previous = await Deno.readTextFile(path);
  } catch {
    // Not there yet.
  }
  if (previous === text) return false;
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(path, text);
  } catch (error) {
    throw denied(error, `writing ${path}`);
  }
  return true;
}

/** Removes `path`, with a one-line error when that is denied or fails. */
export async function removeFile(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    throw denied(error, `removing ${path}`);
  }
}

/** Whether `path` exists (a dangling link counts). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

function denied(error: unknown, what: string): Error {
  if (error instanceof Deno.errors.PermissionDenied) {
    return new RuntimeError(
      `${what} was denied: run echod service as root (sudo) or Administrator`,
    );
  }
  return new RuntimeError(`${what} failed: ${(error as Error).message}`);
}

/** Options for {@linkcode manage}. */
export interface ManageOptions {
  /** Return the output even when the command fails. @default {false} */
  mayFail?: boolean;
  /** An error output meaning echod's service is not installed: throws {@linkcode NOT_INSTALLED}. */
  notInstalled?: RegExp;
}

/** Runs a service manager command; throws with its first error line when it fails. */
export async function manage(
  program: string,
  args: string[],
  options: ManageOptions = {},
): Promise<string> {
  const output = await managerCall(
    program,
    () => runProgram(program, args),
  );
  if (!output.success && !options.mayFail) {
    const stderr = output.stderr.trim();
    const first = stderr.split("\n")[0] || `exit code ${output.code}`;
    if (options.notInstalled?.test(stderr)) throw new RuntimeError(NOT_INSTALLED);
    if (
      /access (is )?denied|permission denied|not permitted|must be root|interactive authentication/i
        .test(stderr)
    ) {
      throw new RuntimeError(
        `${program} ${args[0]} was denied: run echod service as root (sudo) or Administrator`,
      );
    }
    throw new RuntimeError(`${program} ${args.join(" ")} failed: ${first}`);
  }
  return output.stdout;
}

/** Whether a service manager command succeeds; its output is not shown. */
export async function succeeds(program: string, args: string[]): Promise<boolean> {
  return (await managerCall(program, () => runProgram(program, args))).success;
}

/** Runs a status command with its output shown as is; returns its exit code. */
export async function passThrough(program: string, args: string[]): Promise<number> {
  const status = await managerCall(
    program,
    () => new Deno.Command(program, { args, stdin: "null" }).spawn().status,
  );
  return status.code;
}

/** Runs `call`, turning "no such program" into one line naming it. */
async function managerCall<T>(program: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new RuntimeError(`${program} was not found: this host does not look like it uses it`);
    }
    throw error;
  }
}
