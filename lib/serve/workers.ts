/**
 * `echod serve --workers N` on Linux: N Web Workers, each with its own
 * listener on the same address (SO_REUSEPORT, so the kernel spreads new
 * connections over them) and its own event loop, sharing one admission
 * table so that limits hold across workers. Looks like one
 * {@linkcode Server} to the caller.
 *
 * @module
 */

import { type AdmissionOptions, sharedAdmissionMemory } from "./admission.ts";
import { RuntimeError, UsageError } from "../errors.ts";
import { checkWorkerModule, startWorker } from "../worker.ts";
import { bind, type StackMode } from "./listen.ts";
import { formatAddr } from "../net.ts";
import type { LogOptions } from "../log.ts";
import { DEFAULT_DRAIN_TIMEOUT } from "./defaults.ts";
import type { ServeOptions, Server, ShutdownOptions } from "./options.ts";
import { type Snapshot, sumSnapshots } from "./stats.ts";

/** First message to a worker. */
export interface WorkerInit {
  /** Message kind. */
  kind: "init";
  /** Server options, less what cannot cross a thread. */
  server: Omit<ServeOptions, "admission"> & AdmissionOptions;
  /** Exact addresses to bind. */
  hosts: string[];
  /** Port to bind. */
  port: number;
  /** Shared admission memory. */
  memory: SharedArrayBuffer;
  /** Logging set-up, the same in every worker. */
  log: LogOptions;
  /** Milliseconds between counter reports. */
  reportEvery: number;
}

/** Later messages to a worker. */
export type WorkerCommand = { kind: "shutdown"; drainTimeout: number };

/** Messages from a worker. */
export type WorkerReport =
  | { kind: "ready"; stats: Snapshot }
  | { kind: "stats"; stats: Snapshot }
  | { kind: "stopped"; stats: Snapshot }
  | { kind: "failed"; error: string };

const WORKER_URL = new URL("./worker.ts", import.meta.url);

/**
 * Starts `count` workers serving `options`, and resolves once all listen.
 * Throws {@linkcode UsageError} where workers cannot run (not Linux, no
 * read permission for echod's own modules under `deno run`). Not for TLS:
 * Deno's TLS listener does not set SO_REUSEPORT, so workers cannot share
 * its port (the command line refuses the combination).
 */
export async function startPool(
  options: ServeOptions,
  count: number,
  log: LogOptions,
): Promise<Server> {
  if (Deno.build.os !== "linux") {
    throw new UsageError(
      `--workers needs Linux, where SO_REUSEPORT spreads connections; on ${Deno.build.os} run one process`,
    );
  }
  checkWorkerModule(WORKER_URL);
  // Resolve the addresses and the port once, in this thread, then let every
  // worker bind exactly those.
  const probe = bind(options);
  const port = probe.port;
  const mode: StackMode = probe.mode;
  const hosts = probe.listeners.map((l) => (l.addr as Deno.NetAddr).hostname);
  const addresses = probe.listeners.map((l) => formatAddr(l.addr));
  for (const listener of probe.listeners) listener.close();

  const memory = sharedAdmissionMemory();
  const latest: Snapshot[] = [];
  const workers: Worker[] = [];
  const stopped: Promise<void>[] = [];
  const ready: Promise<void>[] = [];
  const { admission: _ignored, ...server } = options;
  for (let i = 0; i < count; i++) {
    const worker = startWorker(WORKER_URL);
    workers.push(worker);
    let onReady: (error?: string) => void = () => {};
    let onStopped: () => void = () => {};
    ready.push(
      new Promise<void>((resolve, reject) => {
        onReady = (error) => (error === undefined ? resolve() : reject(new RuntimeError(error)));
      }),
    );
    stopped.push(new Promise<void>((resolve) => (onStopped = resolve)));
    worker.onmessage = (event: MessageEvent<WorkerReport>) => {
      const report = event.data;
      if (report.kind === "failed") return onReady(report.error);
      latest[i] = report.stats;
      if (report.kind === "ready") onReady();
      if (report.kind === "stopped") onStopped();
    };
    worker.onerror = (event) => {
      event.preventDefault();
      onReady(`worker ${i + 1} failed: ${event.message}`);
      onStopped();
    };
    const init: WorkerInit = {
      kind: "init",
      server,
      hosts,
      port,
      memory,
      log,
      reportEvery: 250,
    };
    worker.postMessage(init);
  }
  try {
    await Promise.all(ready);
  } catch (error) {
    for (const worker of workers) worker.terminate();
    throw error;
  }

  let stopping: Promise<void> | undefined;
  return {
    addresses,
    port,
    ports: [port],
    mode,
    ipv6Error: probe.ipv6Error,
    stats: { snapshot: () => sumSnapshots(latest) },
    shutdown(shutdownOptions: ShutdownOptions = {}): Promise<void> {
      const drainTimeout = shutdownOptions.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT;
      for (const worker of workers) worker.postMessage({ kind: "shutdown", drainTimeout });
      stopping ??= Promise.all(stopped).then(() => {
        for (const worker of workers) worker.terminate();
      });
      return stopping;
    },
  };
}
