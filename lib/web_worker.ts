/**
 * Starts one of echod's own Web Workers (serve and bench both use them),
 * after checking what Deno needs to load one.
 *
 * @module
 */

import { requirePermission } from "./permissions.ts";

/**
 * Throws {@linkcode UsageError} when `url`'s module cannot be loaded as a
 * worker: under `deno run`, Deno reads it from disk, which takes read
 * permission (the compiled binary carries its modules inside).
 */
export function checkWorkerModule(url: URL): void {
  if (url.protocol === "file:") requirePermission("--workers", [{ name: "read", path: url }]);
}

/** Starts the module at `url` as a worker; call {@linkcode checkWorkerModule} first. */
export function startWorker(url: URL): Worker {
  return new Worker(url.href, { type: "module" });
}
