/**
 * Running a program to completion with text on its stdin, its output
 * captured as text: what `echod service` does with the service managers,
 * and what the tests and the smoke script do with echod.
 *
 * @module
 */

/** Options for {@linkcode runProgram}. */
export interface RunProgramOptions {
  /** Text fed on stdin, which is then closed. @default {no stdin} */
  input?: string;
  /** The working directory. @default {this process's} */
  cwd?: string;
  /** Variables added to the environment the program inherits. @default {none} */
  env?: Record<string, string>;
}

/** What a program that ran to completion printed, and how it ended. */
export interface ProgramOutput {
  /** Its exit code. */
  code: number;
  /** Whether it exited with 0. */
  success: boolean;
  /** Everything on stdout. */
  stdout: string;
  /** Everything on stderr. */
  stderr: string;
}

/**
 * Runs `program` with `args`, feeding `options.input` (if any) on stdin,
 * and returns its exit code and output. Throws `Deno.errors.NotFound` when
 * there is no such program.
 */
export async function runProgram(
  program: string,
  args: string[],
  options: RunProgramOptions = {},
): Promise<ProgramOutput> {
  const child = new Deno.Command(program, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: options.input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.input));
    await writer.close();
  }
  const output = await child.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    success: output.success,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
