/**
 * Touching the system for `echod service`: permission checks, writing and
 * removing definition files, and running the service manager.
 *
 * @module
 */

import { RuntimeError } from "../errors.ts";
import { requirePermission } from "../permissions.ts";

/** Under `deno run`, says which flags are missing before anything is changed. */
export function needPermissions(action: string, path: string | undefined, program: string): void {
  const changes = (action === "install" || action === "uninstall") && path !== undefined;
  requirePermission(`echod service ${action}`, [
    ...(changes ? [{ name: "write" as const, path }] : []),
    { name: "run", command: program },
  ]);
}

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

export async function removeFile(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    throw denied(error, `removing ${path}`);
  }
}

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

/** Runs a service manager command; throws with its first error line when it fails. */
export async function manage(
  program: string,
  args: string[],
  options: { mayFail?: boolean; stdin?: string } = {},
): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    const child = new Deno.Command(program, {
      args,
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    }
    output = await child.output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new RuntimeError(`${program} was not found: this host does not look like it uses it`);
    }
    throw error;
  }
  const decoder = new TextDecoder();
  if (!output.success && !options.mayFail) {
    const stderr = decoder.decode(output.stderr).trim();
    const first = stderr.split("\n")[0] || `exit code ${output.code}`;
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
  return decoder.decode(output.stdout);
}

/** Runs a status command with its output shown as is; returns its exit code. */
export async function passThrough(program: string, args: string[]): Promise<number> {
  try {
    const status = await new Deno.Command(program, { args, stdin: "null" }).spawn().status;
    return status.code;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new RuntimeError(`${program} was not found: this host does not look like it uses it`);
    }
    throw error;
  }
}
