/**
 * Deno permissions, checked before use so that a missing one is one line
 * naming the flag to add, never a prompt or a stack trace.
 *
 * @module
 */

import { UsageError } from "./errors.ts";

/** A permission echod may need beyond `--allow-net`. */
export type Need =
  | { name: "read"; path?: string | URL }
  | { name: "write"; path: string }
  | { name: "run"; command: string }
  | { name: "ffi" }
  | { name: "env"; variable: string };

/**
 * Throws {@linkcode UsageError} when any of `needs` is not granted:
 * `WHO needs read permission: add --allow-read=a,b to the deno command`.
 */
export function requirePermission(who: string, needs: Need[]): void {
  // A copy: Deno rewrites a URL path in the descriptor it is given.
  const missing = needs.filter((need) =>
    Deno.permissions.querySync({ ...need }).state !== "granted"
  );
  if (missing.length === 0) return;
  const kinds = [...new Set(missing.map((need) => need.name))];
  const flags = kinds.map((kind) => {
    const values = missing.filter((need) => need.name === kind).map(valueOf)
      .filter((value) => value !== undefined);
    return values.length === 0 ? `--allow-${kind}` : `--allow-${kind}=${values.join(",")}`;
  });
  throw new UsageError(
    `${who} needs ${listed(kinds)} permission: add ${flags.join(" ")} to the deno command`,
  );
}

function valueOf(need: Need): string | undefined {
  if (need.name === "run") return need.command;
  if (need.name === "ffi") return undefined;
  if (need.name === "env") return need.variable;
  if (need.path === undefined || need.path instanceof URL) return undefined;
  return need.path;
}

/** `a`, `a and b`, `a, b and c`. */
function listed(words: string[]): string {
  return words.length <= 2
    ? words.join(" and ")
    : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
}
