/**
 * echod as a native Windows service: the process the Service Control
 * Manager (SCM) starts with `echod service run -- SERVE OPTIONS` answers the
 * SCM itself, through Deno FFI to advapi32.dll (declared in `win32.ts`).
 *
 * How the pieces meet: `StartServiceCtrlDispatcherW` blocks its thread for
 * the life of the service, so it is called `nonblocking` (on a runtime
 * thread) and the event loop keeps serving. The SCM calls ServiceMain and
 * the control handler on threads of its own; `UnsafeCallback.threadSafe`
 * runs them on the JavaScript thread. The dispatcher returns once the
 * service reports SERVICE_STOPPED, which is the last thing echod does.
 *
 * @module
 */

import { EXIT_RUNTIME, EXIT_USAGE, RuntimeError, UsageError } from "../errors.ts";
import { closeLogging, getLog, setupLogging } from "../log.ts";
import { requirePermission } from "../permissions.ts";
import type { ServeConfig } from "../serve/options.ts";
import { runServe } from "../serve/mod.ts";
import { SERVICE_NAME, WINDOWS_LOG_FILE } from "./spec.ts";
import {
  address,
  advapi32,
  closeLibraries,
  ERROR_CALL_NOT_IMPLEMENTED,
  ERROR_SERVICE_SPECIFIC_ERROR,
  HANDLER_EX,
  NO_ERROR,
  SERVICE_ACCEPT_SHUTDOWN,
  SERVICE_ACCEPT_STOP,
  SERVICE_CONTROL_INTERROGATE,
  SERVICE_CONTROL_SHUTDOWN,
  SERVICE_CONTROL_STOP,
  SERVICE_MAIN,
  SERVICE_RUNNING,
  SERVICE_START_PENDING,
  SERVICE_STOP_PENDING,
  SERVICE_STOPPED,
  SERVICE_WIN32_OWN_PROCESS,
  STATUS,
  wide,
} from "./win32.ts";

/** How long starting may take before the SCM gives up on echod (ms). */
const START_WAIT_HINT = 30_000;
/** How often a pending state proves progress to the SCM (ms). */
const CHECKPOINT_INTERVAL = 1_000;

/**
 * Runs `echod serve` as the Windows service the SCM started, until the SCM
 * stops it; returns the exit code. Logs go to `--log-file` (by default
 * {@linkcode WINDOWS_LOG_FILE}), since a service has no console.
 */
export async function runWindowsService(config: ServeConfig): Promise<number> {
  if (Deno.build.os !== "windows") {
    throw new RuntimeError(
      `echod service run is how the Windows service manager starts echod; on ${Deno.build.os}, use echod serve`,
    );
  }
  requirePermission("echod service run (the Windows service)", [{ name: "ffi" }]);
  const serveConfig = config.log.file === undefined
    ? { ...config, log: { ...config.log, file: WINDOWS_LOG_FILE } }
    : config;
  const service = new WindowsService(serveConfig);
  return await service.run();
}

/** One run of the service: the SCM's callbacks, the status it is told, and the server. */
class WindowsService {
  #config: ServeConfig;
  #api = advapi32();
  #name = wide(SERVICE_NAME);
  #status = new Uint32Array(7);
  #handle: Deno.PointerValue = null;
  #stop = Promise.withResolvers<string>();
  #served: Promise<number> | undefined;
  #ticker: ReturnType<typeof setInterval> | undefined;
  #main = Deno.UnsafeCallback.threadSafe(SERVICE_MAIN, () => this.#serviceMain());
  #handler = Deno.UnsafeCallback.threadSafe(
    HANDLER_EX,
    (control: number) => this.#control(control),
  );

  constructor(config: ServeConfig) {
    this.#config = config;
    this.#status[STATUS.serviceType] = SERVICE_WIN32_OWN_PROCESS;
  }

  async run(): Promise<number> {
    // SERVICE_TABLE_ENTRYW[2]: {name, ServiceMain}, then the null entry that ends it.
    const table = new BigUint64Array([
      address(this.#name),
      address(this.#main.pointer),
      0n,
      0n,
    ]);
    let dispatched: number;
    try {
      dispatched = await this.#api.StartServiceCtrlDispatcherW(table);
    } finally {
      this.#main.close();
      this.#handler.close();
    }
    const code = this.#served === undefined ? undefined : await this.#served;
    closeLibraries();
    if (dispatched === 0 || code === undefined) {
      throw new RuntimeError(
        "echod service run must be started by the Windows service manager (sc start echod); " +
          "to serve from a console, use echod serve",
      );
    }
    return code;
  }

  /** ServiceMain: register the control handler, then start serving. */
  #serviceMain(): void {
    this.#handle = this.#api.RegisterServiceCtrlHandlerExW(
      this.#name,
      this.#handler.pointer,
      null,
    );
    if (this.#handle === null) {
      // Nothing can be reported to the SCM without a handle: end the dispatcher's wait.
      this.#served = Promise.resolve(1);
      return;
    }
    this.#pending(SERVICE_START_PENDING, START_WAIT_HINT);
    this.#served = runServe(this.#config, {
      stop: this.#stop.promise,
      ready: () => this.#report(SERVICE_RUNNING),
      draining: () => this.#pending(SERVICE_STOP_PENDING, this.#config.drainTimeout + 5_000),
    }).then(
      (code) => this.#stopped(code),
      (error) => this.#failed(error),
    );
  }

  /** HandlerEx: stop and shutdown start the drain; anything else is not ours to handle. */
  #control(control: number): number {
    switch (control) {
      case SERVICE_CONTROL_STOP:
        this.#stop.resolve("SERVICE_CONTROL_STOP");
        return NO_ERROR;
      case SERVICE_CONTROL_SHUTDOWN:
        this.#stop.resolve("SERVICE_CONTROL_SHUTDOWN");
        return NO_ERROR;
      case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR;
      default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
  }

  /** A pending state, with a checkpoint that moves every second so the SCM sees progress. */
  #pending(state: number, waitHint: number): void {
    clearInterval(this.#ticker);
    this.#status[STATUS.checkPoint] = 0;
    this.#report(state, { waitHint });
    this.#ticker = setInterval(() => {
      this.#status[STATUS.checkPoint]++;
      this.#set();
    }, CHECKPOINT_INTERVAL);
  }

  #stopped(code: number): number {
    this.#report(SERVICE_STOPPED, { exitCode: code });
    return code;
  }

  /** Failing to start: said in the log (a service has no console), and to the SCM. */
  async #failed(error: unknown): Promise<number> {
    const code = error instanceof UsageError ? EXIT_USAGE : EXIT_RUNTIME;
    try {
      await setupLogging(this.#config.log);
      getLog().error("echod service could not start: {error}", {
        error: (error as Error).message,
      });
      await closeLogging();
    } catch {
      // The log file itself is what failed: the SCM's exit code is all that is left.
    }
    return this.#stopped(code);
  }

  #report(state: number, options: { waitHint?: number; exitCode?: number } = {}): void {
    if (state !== SERVICE_START_PENDING && state !== SERVICE_STOP_PENDING) {
      clearInterval(this.#ticker);
      this.#status[STATUS.checkPoint] = 0;
    }
    const exitCode = options.exitCode ?? 0;
    this.#status[STATUS.currentState] = state;
    this.#status[STATUS.controlsAccepted] = state === SERVICE_RUNNING
      ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN
      : 0;
    this.#status[STATUS.win32ExitCode] = exitCode === 0 ? NO_ERROR : ERROR_SERVICE_SPECIFIC_ERROR;
    this.#status[STATUS.serviceSpecificExitCode] = exitCode;
    this.#status[STATUS.waitHint] = options.waitHint ?? 0;
    this.#set();
  }

  #set(): void {
    this.#api.SetServiceStatus(this.#handle, this.#status);
  }
}
