/**
 * One worker of `echod serve --workers N`: binds the pool's addresses with
 * SO_REUSEPORT, serves with the pool's shared admission, reports its
 * counters, and stops when told.
 *
 * @module
 */

import { SharedAdmission } from "./admission.ts";
import { closeLogging, setupLogging } from "../log.ts";
import type { Server } from "./options.ts";
import { TcpServer } from "./tcp_server.ts";
import type { WorkerCommand, WorkerInit, WorkerReport } from "./workers.ts";

// This file runs as a worker, where `self` is the worker scope; the
// project's type check sees window types, so the members used are named here.
const scope = self as unknown as {
  onmessage: (event: MessageEvent<WorkerInit | WorkerCommand>) => void;
  postMessage: (message: WorkerReport) => void;
  close: () => void;
};

let server: Server | undefined;
let reporting: ReturnType<typeof setInterval> | undefined;
let stopping = false;

scope.onmessage = async function onMessage(event) {
  const message = event.data;
  if (message.kind === "init") {
    try {
      await setupLogging(message.log);
      server = new TcpServer({
        ...message.server,
        hosts: message.hosts,
        port: message.port,
        reusePort: true,
        admission: new SharedAdmission(message.memory, message.server),
      });
      scope.postMessage({ kind: "ready", stats: server.stats.snapshot() });
      reporting = setInterval(() => {
        scope.postMessage({ kind: "stats", stats: server!.stats.snapshot() });
      }, message.reportEvery);
    } catch (error) {
      scope.postMessage({ kind: "failed", error: (error as Error).message });
    }
    return;
  }
  if (message.kind === "shutdown" && server !== undefined) {
    const first = !stopping;
    stopping = true;
    const done = server.shutdown({ drainTimeout: message.drainTimeout });
    // A second shutdown (drain timeout 0) only cuts the first one short.
    if (!first) return;
    clearInterval(reporting);
    await done;
    // Flush this worker's log lines first: the pool terminates a worker as
    // soon as it reports "stopped", and its last lines would be lost.
    await closeLogging();
    scope.postMessage({ kind: "stopped", stats: server.stats.snapshot() });
    scope.close();
  }
};
