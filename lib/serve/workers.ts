/**
 * `echod serve --workers N` on Linux: N Web Workers, each with its own
 * listener on the same address (SO_REUSEPORT, so the kernel spreads new
 * connections over them) and its own event loop, sharing one admission
 * table so that limits hold across workers. Each worker runs a
 * `TcpServer` (`tcp_server.ts`); the pool looks like one {@linkcode Server} to the
 * caller.
 *
 * @module
 */

import { type AdmissionOptions, sharedAdmissionMemory } from "./admission.ts";
import { RuntimeError } from "../errors.ts";
import { OptionsError } from "./errors.ts";
import { checkWorkerModule, startWorker } from "../web_worker.ts";
import { bind, type StackMode } from "./listen.ts";
import { formatAddr } from "../net.ts";
import type { LogOptions } from "../log.ts";
import { DEFAULT_DRAIN_TIMEOUT } from "./defaults.ts";
import type { ServeOptions, Server, ShutdownOptions } from "./options.ts";
import { type Snapshot, type StatsSource, sumSnapshots } from "./stats.ts";

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

const WORKER_URL = new URL("./worker_thread.ts", import.meta.url);

/**
 * Starts `count` workers serving `options`, and resolves once all listen.
 * Throws {@linkcode OptionsError} where workers cannot run (not Linux), and
 * a usage error without read permission for echod's own modules under `deno run`). Not for TLS:
 * its context (Node's `SecureContext`, replaced on SIGHUP in the main
 * thread) cannot be sent to a worker, so the command line refuses the
 * combination.
 */
export async function startPool(
  options: ServeOptions,
  count: number,
  log: LogOptions,
): Promise<Server> {
  if (Deno.build.os !== "linux") {
    throw new OptionsError(
      "workers",
      `needs Linux, where SO_REUSEPORT spreads connections; on ${Deno.build.os} run one process`,
    );
  }
  checkWorkerModule(WORKER_URL);
  const pool = new WorkerPool(options);
  await pool.start(count, log);
  return pool;
}

/**
 * The main thread's side of the workers: it resolves the addresses and the
 * port once, then lets each worker bind exactly those and run its own
 * `TcpServer`; it sums their counters and stops them together.
 */
class WorkerPool implements Server {
  readonly addresses: string[];
  readonly port: number;
  readonly ports: number[];
  readonly mode: StackMode;
  readonly ipv6Error?: string;
  readonly stats: StatsSource = { snapshot: () => sumSnapshots(this.#latest) };
  #options: ServeOptions;
  #hosts: string[];
  #workers: Worker[] = [];
  #latest: Snapshot[] = [];
  #stopped: Promise<void>[] = [];
  #stopping?: Promise<void>;

  /** Binds `options` once to learn the addresses and port, and lets go of them. */
  constructor(options: ServeOptions) {
    const probe = bind(options);
    this.#options = options;
    this.port = probe.port;
    this.ports = [probe.port];
    this.mode = probe.mode;
    this.ipv6Error = probe.ipv6Error;
    this.#hosts = probe.listeners.map((l) => (l.addr as Deno.NetAddr).hostname);
    this.addresses = probe.listeners.map((l) => formatAddr(l.addr));
    for (const listener of probe.listeners) listener.close();
  }

  /** Starts `count` workers; resolves once all listen, or stops them all and rejects. */
  async start(count: number, log: LogOptions): Promise<void> {
    const memory = sharedAdmissionMemory();
    const { admission: _ignored, ...server } = this.#options;
    const init: WorkerInit = {
      kind: "init",
      server,
      hosts: this.#hosts,
      port: this.port,
      memory,
      log,
      reportEvery: 250,
    };
    const ready = Array.from({ length: count }, (_, i) => this.#startOne(i, init));
    try {
      await Promise.all(ready);
    } catch (error) {
      for (const worker of this.#workers) worker.terminate();
      throw error;
    }
  }

  /** Tells every worker to drain; resolves when all have stopped. */
  shutdown(options: ShutdownOptions = {}): Promise<void> {
    const drainTimeout = options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT;
    for (const worker of this.#workers) worker.postMessage({ kind: "shutdown", drainTimeout });
    this.#stopping ??= Promise.all(this.#stopped).then(() => {
      for (const worker of this.#workers) worker.terminate();
    });
    return this.#stopping;
  }

  /** Starts worker `i`; resolves when it listens. */
  #startOne(i: number, init: WorkerInit): Promise<void> {
    const worker = startWorker(WORKER_URL);
    this.#workers.push(worker);
    const ready = Promise.withResolvers<void>();
    const stopped = Promise.withResolvers<void>();
    this.#stopped.push(stopped.promise);
    worker.onmessage = (event: MessageEvent<WorkerReport>) => {
      const report = event.data;
      if (report.kind === "failed") return ready.reject(new RuntimeError(report.error));
      this.#latest[i] = report.stats;
      if (report.kind === "ready") ready.resolve();
      if (report.kind === "stopped") stopped.resolve();
    };
    worker.onerror = (event) => {
      event.preventDefault();
      ready.reject(new RuntimeError(`worker ${i + 1} failed: ${event.message}`));
      stopped.resolve();
    };
    worker.postMessage(init);
    return ready.promise;
  }
}
