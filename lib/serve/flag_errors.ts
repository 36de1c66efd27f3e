/**
 * The `serve` command's wording of the server library's typed errors
 * (`errors.ts`): with its flags, the advice a person at the terminal needs,
 * and the kind of user error that sets the exit code.
 *
 * @module
 */

import { RuntimeError, UsageError } from "../errors.ts";
import {
  AddressNotLocalError,
  BindError,
  HostsOverlapError,
  NetPermissionError,
  OptionsError,
  PortInUseError,
  PrivilegedPortError,
} from "./errors.ts";

/** The command-line flag of each library option the library's errors name. */
const FLAGS: Readonly<Record<string, string>> = {
  hosts: "--host",
  port: "--port",
  workers: "--workers",
};

/**
 * `error` as the command line says it: a {@linkcode UsageError} or
 * {@linkcode RuntimeError} naming flags; any other error unchanged.
 */
export function wordForCommandLine(error: unknown): unknown {
  if (error instanceof NetPermissionError) {
    return new UsageError(
      "echod serve needs network permission: add --allow-net to the deno command",
    );
  }
  if (error instanceof HostsOverlapError) {
    return new UsageError(
      `--host :: also takes IPv4 on this host (dual-stack), so it overlaps --host ${error.host}: leave out one of them`,
    );
  }
  if (error instanceof OptionsError) {
    return new UsageError(`${FLAGS[error.option] ?? error.option} ${error.reason}`);
  }
  if (error instanceof BindError) return new RuntimeError(advised(error), { cause: error });
  return error;
}

/** A refusal to bind, with what to do about it. */
function advised(error: BindError): string {
  if (error instanceof PortInUseError) {
    return error.target.transport === "udp"
      ? `${error.message}: choose another --port`
      : `${error.message}: stop the program using it or choose another --port`;
  }
  if (error instanceof PrivilegedPortError) return `${error.message}; choose --port 1024 or above`;
  if (error instanceof AddressNotLocalError) {
    return `${error.message}: use one of its addresses or leave out --host`;
  }
  return error.message;
}
