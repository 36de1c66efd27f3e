/**
 * The two kinds of failure a user can cause, and the exit code each maps to.
 *
 * Both carry a complete one-line message meant for the person at the
 * terminal; `main.ts` prints it without a stack trace.
 *
 * @module
 */

/** Exit code for a command line that cannot be run as written. */
export const EXIT_USAGE = 2;

/** Exit code for a valid command that failed while running. */
export const EXIT_RUNTIME = 1;

/** The command line is wrong: unknown option, malformed value, missing permission flag. */
export class UsageError extends Error {
  /** Process exit code for this error. */
  readonly exitCode = EXIT_USAGE;

  /** Creates a usage error with a message for the user. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The command line was fine but the system refused: port in use, privileged port. */
export class RuntimeError extends Error {
  /** Process exit code for this error. */
  readonly exitCode = EXIT_RUNTIME;

  /** Creates a runtime error with a message for the user. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RuntimeError";
  }
}
