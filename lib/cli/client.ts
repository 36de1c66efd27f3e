/**
 * `echod client`: its options and what they parse into.
 *
 * @module
 */

import { isIP } from "node:net";
import { UsageError } from "../errors.ts";
import type { ClientConfig } from "../client/mod.ts";
import type { Target } from "../net.ts";
import {
  type CommandSpec,
  CONNECT_TIMEOUT,
  EXPECT_GREETING,
  HELP,
  type OptionValues,
} from "./options.ts";

/** The client command's options. */
export const CLIENT: CommandSpec = {
  name: "client",
  summary: "send stdin to an echo server and print what comes back",
  usage: "echod client HOST:PORT [options]",
  target: true,
  options: [
    { name: "ipv4", kind: "boolean", short: "4", help: "connect over IPv4 only" },
    { name: "ipv6", kind: "boolean", short: "6", help: "connect over IPv6 only" },
    CONNECT_TIMEOUT,
    EXPECT_GREETING,
    HELP,
  ],
  examples: [
    "echod client 127.0.0.1:40007",
    "echo hello | echod client [::1]:40007",
  ],
};

/** Turns the values read against {@linkcode CLIENT} into a {@linkcode ClientConfig}. */
export function clientConfig(target: Target, opts: OptionValues): ClientConfig {
  if (opts.has("ipv4") && opts.has("ipv6")) {
    throw new UsageError("--ipv4 and --ipv6 exclude each other: give one");
  }
  const family = opts.has("ipv4") ? 4 : opts.has("ipv6") ? 6 : undefined;
  const literal = isIP(target.host);
  if (family !== undefined && literal !== 0 && literal !== family) {
    throw new UsageError(`${target.host} is not an IPv${family} address (--ipv${family})`);
  }
  return {
    target,
    family,
    connectTimeout: opts.positiveTime("connect-timeout", 5_000),
    expectGreeting: opts.has("expect-greeting"),
  };
}
