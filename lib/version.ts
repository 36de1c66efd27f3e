/**
 * The version line: echod's own version (from deno.json, the one place it is
 * kept), the Deno runtime it runs on, and the target it was built for.
 *
 * @module
 */

import meta from "../deno.json" with { type: "json" };

/** echod's version. */
export const VERSION: string = meta.version;

/** The line `echod --version` prints. */
export function versionText(): string {
  return `echod ${VERSION} (deno ${Deno.version.deno}, ${Deno.build.target})`;
}
