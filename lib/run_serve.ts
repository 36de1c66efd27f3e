/**
 * The `serve` command: logging set up, server started, a stats line now and
 * then, and a graceful stop on SIGINT/SIGTERM (SIGINT/SIGBREAK on Windows).
 *
 * @module
 */

import type { ServeConfig } from "./cli.ts";
import { closeLogging, getLog, setupLogging } from "./log.ts";
import { serve, type Server } from "./server.ts";
import { startStatsReporter } from "./stats.ts";
import { startPool } from "./worker_pool.ts";
import { VERSION } from "./version.ts";

const STOP_SIGNALS: Deno.Signal[] = Deno.build.os === "windows"
  ? ["SIGINT", "SIGBREAK"]
  : ["SIGINT", "SIGTERM"];

/**
 * Runs the server until a stop signal and returns the exit code. Errors
 * that stop it from starting are thrown for `main.ts` to report.
 */
export async function runServe(config: ServeConfig): Promise<number> {
  await setupLogging(config.log);
  const log = getLog();
  let server: Server;
  try {
    server = config.workers > 1
      ? await startPool(config.server, config.workers, config.log)
      : serve(config.server);
  } catch (error) {
    await closeLogging();
    throw error;
  }
  // Listen before announcing, so a signal sent on readiness is not lost.
  const stopSignal = new Promise<Deno.Signal>((resolve) => {
    let received = false;
    for (const name of STOP_SIGNALS) {
      Deno.addSignalListener(name, function onSignal() {
        if (!received) {
          received = true;
          resolve(name);
          return;
        }
        // A second signal while draining means "now".
        log.info("received {signal} again: closing all connections now", {
          signal: name,
        });
        server.shutdown({ drainTimeout: 0 });
      });
    }
  });
  announce(server, config);
  const reporter = startStatsReporter(server.stats, config.statsInterval, log);

  const signal = await stopSignal;
  log.info("received {signal}: no longer accepting connections", { signal });
  await server.shutdown({ drainTimeout: config.drainTimeout });
  reporter?.stop();
  log.info(
    "stopped: {accepted} connections accepted, {refused} refused, {bytesIn} bytes in, {bytesOut} bytes out",
    server.stats.snapshot(),
  );
  await closeLogging();
  return 0;
}

function announce(server: Server, config: ServeConfig): void {
  const log = getLog();
  if (server.mode === "ipv4-only") {
    log.warning(
      "IPv6 is not available on this host ({error}): serving IPv4 only",
      {
        error: server.ipv6Error,
      },
    );
  }
  const { maxConns, maxConnsPerIp, idleTimeout, maxLifetime } = config.server;
  const template = "echod {version} listening on {addresses}" +
    (server.mode === "dual-stack" ? " (IPv4 too, through the dual-stack IPv6 socket)" : "") +
    (config.workers > 1 ? " in {workers} workers" : "");
  log.info(template, {
    version: VERSION,
    addresses: server.addresses.join(", "),
    port: server.port,
    mode: server.mode,
    maxConns,
    maxConnsPerIp,
    idleTimeoutMs: idleTimeout,
    maxLifetimeMs: maxLifetime,
    workers: config.workers,
    pid: Deno.pid,
  });
}
