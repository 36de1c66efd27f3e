/**
 * The `serve` command: logging set up, the TCP server (in this thread or in
 * workers), UDP echo and the metrics endpoint when asked for, a stats line
 * now and then, and a graceful stop on SIGINT, SIGTERM or SIGQUIT (SIGINT
 * or SIGBREAK on Windows, or `POST /quitquitquit` when enabled); SIGHUP
 * reopens the log file and reloads the TLS certificate and key.
 *
 * @module
 */

import { AccessList } from "./acl.ts";
import type { ServeConfig } from "./options.ts";
import { closeLogging, getLog, reopenLog, setupLogging } from "../log.ts";
import { type MetricsServer, serveMetrics } from "./metrics_server.ts";
import type { Server } from "./options.ts";
import { wordForCommandLine } from "./flag_errors.ts";
import { readHostName } from "./greeting.ts";
import { TcpServer } from "./tcp_server.ts";
import { refusedTotal, type StatsSource } from "./stats.ts";
import { startStatsReporter } from "./stats_line.ts";
import { StopRequests } from "./stop.ts";
import { serveUdp, type UdpServer } from "./udp.ts";
import { startPool } from "./workers.ts";
import { VERSION } from "../version.ts";
import type { TlsCredentials } from "./tls_files.ts";

const WINDOWS = Deno.build.os === "windows";

/** Signals that stop echod gracefully (a second one stops it at once). */
const STOP_SIGNALS: Deno.Signal[] = WINDOWS
  ? ["SIGINT", "SIGBREAK"]
  : ["SIGINT", "SIGTERM", "SIGQUIT"];

/**
 * How something other than a signal runs the server (the Windows service
 * control handler): what stops it, and what to tell when.
 */
export interface ServeControl {
  /**
   * Stops the server when it resolves, with what asked for it (logged).
   * When given, stop signals are not listened for.
   */
  stop: Promise<string>;
  /** Called once everything is bound, just before the readiness line. */
  ready?: () => void;
  /** Called when the drain begins. */
  draining?: () => void;
}

/**
 * Runs the server until a stop signal (or `control.stop`) and returns the
 * exit code. Errors that stop it from starting are thrown for the caller
 * to report.
 */
export async function runServe(config: ServeConfig, control?: ServeControl): Promise<number> {
  // Node's TLS is loaded only when TLS is served; the files are checked
  // here, so a bad one is one line at start-up.
  const credentials = config.tls && new (await import("./tls_files.ts")).TlsCredentials(config.tls);
  // The TLS echo is loaded now, not by the first TLS connection: a module
  // loaded while descriptors are exhausted made Deno 2.9.6 panic (in its
  // stack-growing code, with EMFILE), and echod must survive exhaustion.
  if (config.tls) await import("./tls.ts");
  const tls = config.tls && credentials && {
    // Read per connection: a reload serves new handshakes only.
    get context() {
      return credentials.context;
    },
    port: config.tls.port,
    handshakeTimeout: config.tls.handshakeTimeout,
  };
  await setupLogging(config.log);
  const log = getLog();
  for (const note of config.notes ?? []) log[note.level](note.message);
  credentials?.warnIfOutOfDate();
  let server: Server | undefined;
  let udp: UdpServer | undefined;
  let metrics: MetricsServer | undefined;
  let stats: StatsSource;
  // From the first stop signal on: /readyz fails, echod_draining is 1.
  let draining = false;
  // Made before the metrics endpoint, which may take `POST /quitquitquit`.
  const stop = new StopRequests(function closeAllNow() {
    server?.shutdown({ drainTimeout: 0 });
  });
  try {
    const options = { ...config.server, tls };
    server = config.workers > 1
      ? await startPool(options, config.workers, config.log)
      : new TcpServer(options);
    stats = server.stats;
    if (config.udp) {
      const udpServer = udp = serveUdp({
        hosts: config.server.hosts,
        ports: server.ports,
        rate: config.udp.rate,
        maxRate: config.udp.maxRate,
        access: config.server.access && new AccessList(config.server.access),
        faults: config.server.faults,
      });
      const tcpStats = server.stats;
      stats = {
        snapshot: () => ({ ...tcpStats.snapshot(), ...udpServer.stats.snapshot() }),
        ports: () => tcpStats.ports?.() ?? [],
      };
    }
    if (config.metrics) {
      metrics = serveMetrics(config.metrics.host, config.metrics.port, stats, {
        draining: () => draining,
        quit: config.metrics.quit ? () => stop.request("POST /quitquitquit") : undefined,
      });
    }
  } catch (error) {
    udp?.close();
    await server?.shutdown({ drainTimeout: 0 });
    await closeLogging();
    throw wordForCommandLine(error);
  }

  // Listen before announcing, so a signal sent on readiness is not lost.
  if (control === undefined) listenForStopSignals(stop);
  else control.stop.then((by) => stop.request(by));
  if (!WINDOWS && control === undefined) listenForOtherSignals(config, credentials);
  control?.ready?.();
  announce(server, config, udp, metrics);
  const reporter = startStatsReporter(stats, config.statsInterval, log);

  const signal = await stop.first;
  draining = true;
  control?.draining?.();
  if (config.shutdownDelay > 0) {
    log.info(
      "received {signal}: not ready (/readyz answers 503); accepting {delayMs} ms more before draining",
      { signal, delayMs: config.shutdownDelay },
    );
    await delayUnless(config.shutdownDelay, stop.again);
    log.info("shutdown delay over: no longer accepting connections", { signal });
  } else {
    log.info("received {signal}: no longer accepting connections", { signal });
  }
  udp?.close();
  await server.shutdown({ drainTimeout: config.drainTimeout });
  reporter?.stop();
  await metrics?.close();
  log.info(
    "stopped: {accepted} connections accepted, {refused} refused, {bytesIn} bytes in, " +
      "{bytesOut} bytes out, {drainCut} bytes cut by the drain",
    { ...stats.snapshot(), refused: refusedTotal(stats.snapshot()) },
  );
  await closeLogging();
  return 0;
}

/** Makes every stop signal a stop request (a second one while delaying or draining means "now"). */
function listenForStopSignals(stop: StopRequests): void {
  for (const name of STOP_SIGNALS) {
    Deno.addSignalListener(name, function onSignal() {
      stop.request(name);
    });
  }
}

/** Waits `ms`, or less if `cut` comes first. */
async function delayUnless(ms: number, cut: Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([new Promise<void>((resolve) => timer = setTimeout(resolve, ms)), cut]);
  clearTimeout(timer);
}

/**
 * The signals a daemon is sent besides stop signals, which would otherwise
 * end the process at once: SIGHUP reloads the TLS certificate and key and
 * reopens the log file (after logrotate),
 * SIGUSR2 is ignored, SIGUSR1 is ignored too once the debugger the runtime
 * opens on it is closed.
 */
function listenForOtherSignals(config: ServeConfig, credentials?: TlsCredentials): void {
  const log = getLog();
  Deno.addSignalListener("SIGHUP", async function onHangup() {
    // The certificate and key first: a reload never waits on the log file.
    credentials?.reload();
    if (config.log.file === undefined) {
      log.info("received SIGHUP: logging to stderr, nothing to reopen", { signal: "SIGHUP" });
      return;
    }
    // A reopen that fails is said on stderr by the log itself, which then
    // drops (and counts) lines until the file can be written again.
    if (await reopenLog()) {
      log.info("received SIGHUP: reopened the log file {file}", {
        signal: "SIGHUP",
        file: config.log.file,
      });
    }
  });
  // Deno (2.9.2 and later) opens its debugger on 127.0.0.1:9229 on SIGUSR1,
  // as Node does: anyone on the host could then run code as echod. Close it
  // again at once, and once more in case the runtime opens it after us.
  Deno.addSignalListener("SIGUSR1", function onUsr1() {
    // Loaded only when the signal comes: nothing added to every start-up.
    const inspector = import("node:inspector");
    inspector.then(closeInspector);
    setTimeout(() => inspector.then(closeInspector), 100);
    log.warning(
      "received SIGUSR1: closed the debugger Deno opens on it; use --metrics or --stats-interval for counters",
      { signal: "SIGUSR1" },
    );
  });
  Deno.addSignalListener("SIGUSR2", function onUsr2() {
    log.info("received SIGUSR2: ignored", { signal: "SIGUSR2" });
  });
}

function closeInspector(inspector: typeof import("node:inspector")): void {
  try {
    inspector.close();
  } catch {
    // Not open.
  }
}

function announce(
  server: Server,
  config: ServeConfig,
  udp: UdpServer | undefined,
  metrics: MetricsServer | undefined,
): void {
  const log = getLog();
  if (server.mode === "ipv4-only") {
    log.warning("IPv6 is not available on this host ({error}): serving IPv4 only", {
      error: server.ipv6Error,
    });
  }
  if (config.server.greeting !== undefined && readHostName() === undefined) {
    log.warning(
      "--greeting: reading the host name needs --allow-sys=hostname; the greeting names the local address instead",
    );
  }
  const { maxConns, maxConnsPerIp, idleTimeout, maxLifetime } = config.server;
  const template = "echod {version} listening on {addresses}" +
    (server.mode === "dual-stack" ? " (IPv4 too, through the dual-stack IPv6 socket)" : "") +
    (config.workers > 1 ? " in {workers} workers" : "") +
    (udp ? "; UDP on {udpAddresses}" : "") +
    (metrics ? "; metrics on http://{metricsAddress}/metrics" : "");
  log.info(template, {
    version: VERSION,
    addresses: server.addresses.join(", "),
    port: server.port,
    ports: server.ports,
    tlsPort: server.tlsPort,
    mode: server.mode,
    udpAddresses: udp?.addresses.join(", "),
    metricsAddress: metrics?.address,
    maxConns,
    maxConnsPerIp,
    idleTimeoutMs: idleTimeout,
    maxLifetimeMs: maxLifetime,
    workers: config.workers,
    pid: Deno.pid,
  });
}
