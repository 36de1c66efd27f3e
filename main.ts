#!/usr/bin/env -S deno run --allow-net
/**
 * echod: a TCP echo server (RFC 862) on IPv6 and IPv4.
 *
 * ```sh
 * deno run --allow-net main.ts --help
 * ```
 *
 * Parses the command line and dispatches; each command lives in `lib/`.
 *
 * @module
 */

import { parseCommandLine } from "./lib/cli/mod.ts";
import { EXIT_RUNTIME, RuntimeError, UsageError } from "./lib/errors.ts";
import { runServe } from "./lib/serve/mod.ts";
import { versionText } from "./lib/version.ts";

async function main(args: string[]): Promise<number> {
  const command = parseCommandLine(args);
  switch (command.kind) {
    case "help":
      console.log(command.text);
      return 0;
    case "version":
      console.log(versionText());
      return 0;
    case "serve":
      return await runServe(command.config);
    // Loaded on demand, so that serving never loads the load generator.
    case "client":
      return await (await import("./lib/client/mod.ts")).runClient(command.config);
    case "bench":
      return await (await import("./lib/bench/mod.ts")).runBench(command.config);
    case "service":
      return await (await import("./lib/service/mod.ts")).runService(command.config);
  }
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof RuntimeError)) {
      throw error;
    }
    console.error(`echod: ${error.message}`);
    code = error instanceof UsageError ? error.exitCode : EXIT_RUNTIME;
  }
  Deno.exit(code);
}
