/**
 * A client of the Service Control Manager: opens, creates, reconfigures,
 * starts, stops, queries and deletes a service (what `sc.exe` does), on the
 * declarations of `win32.ts`. Needs Administrator.
 *
 * @module
 */

import { RuntimeError } from "../errors.ts";
import {
  advapi32,
  closeLibraries,
  ERROR_ACCESS_DENIED,
  ERROR_SERVICE_ALREADY_RUNNING,
  ERROR_SERVICE_DOES_NOT_EXIST,
  ERROR_SERVICE_MARKED_FOR_DELETE,
  ERROR_SERVICE_NOT_ACTIVE,
  ERROR_SERVICE_SPECIFIC_ERROR,
  lastError,
  restartActions,
  SC_MANAGER_ALL_ACCESS,
  SC_STATUS_PROCESS_INFO,
  SERVICE_ALL_ACCESS,
  SERVICE_AUTO_START,
  SERVICE_CONFIG_DESCRIPTION,
  SERVICE_CONFIG_FAILURE_ACTIONS,
  SERVICE_CONFIG_FAILURE_ACTIONS_FLAG,
  SERVICE_CONTROL_STOP,
  SERVICE_ERROR_NORMAL,
  SERVICE_NO_CHANGE,
  SERVICE_WIN32_OWN_PROCESS,
  serviceDescription,
  STATE_NAMES,
  STATUS,
  wide,
} from "./win32.ts";

/** A service as the SCM reports it. */
export interface ServiceState {
  /** `dwCurrentState`, e.g. {@linkcode SERVICE_RUNNING}. */
  state: number;
  /** Its name as `sc query` prints it. */
  stateName: string;
  /** `dwWin32ExitCode`. */
  win32ExitCode: number;
  /** `dwServiceSpecificExitCode` (echod's exit code when win32ExitCode is 1066). */
  serviceExitCode: number;
  /** The process serving it; 0 when stopped. */
  pid: number;
}

/** What a service is created or reconfigured with. */
export interface ServiceDefinition {
  /** Shown in services.msc and `Get-Service`. */
  displayName: string;
  /** The description services.msc shows. */
  description: string;
  /** The command line the SCM starts (quoted for CommandLineToArgvW). */
  binaryPath: string;
  /** Milliseconds to wait before each restart after a failure. */
  restartDelays: number[];
  /** Seconds without failure after which the failure count is reset. */
  resetPeriod: number;
}

/** The Service Control Manager, opened with full access (needs Administrator). */
export class ServiceManager {
  #api = advapi32();
  #handle: Deno.PointerValue;

  constructor() {
    this.#handle = this.#api.OpenSCManagerW(null, null, SC_MANAGER_ALL_ACCESS);
    if (this.#handle === null) throw win32Error("opening the service manager");
  }

  /** The installed service `name`, or undefined when there is none. */
  open(name: string): Service | undefined {
    const handle = this.#api.OpenServiceW(this.#handle, wide(name), SERVICE_ALL_ACCESS);
    if (handle !== null) return new Service(name, handle);
    const code = lastError();
    if (code === ERROR_SERVICE_DOES_NOT_EXIST) return undefined;
    throw win32Error(`opening the service ${name}`, code);
  }

  /**
   * Creates the service `name`, started automatically at boot as
   * LocalSystem; {@linkcode Service.describe} sets the rest.
   */
  create(name: string, definition: ServiceDefinition): Service {
    const handle = this.#api.CreateServiceW(
      this.#handle,
      wide(name),
      wide(definition.displayName),
      SERVICE_ALL_ACCESS,
      SERVICE_WIN32_OWN_PROCESS,
      SERVICE_AUTO_START,
      SERVICE_ERROR_NORMAL,
      wide(definition.binaryPath),
      null, // no load order group
      null, // no tag
      null, // no dependencies
      null, // LocalSystem
      null, // which has no password
    );
    if (handle === null) throw win32Error(`creating the service ${name}`);
    return new Service(name, handle);
  }

  /** Closes it and unloads the libraries, so that nothing keeps the process alive: close it last. */
  close(): void {
    this.#api.CloseServiceHandle(this.#handle);
    closeLibraries();
  }
}

/** One installed service, opened with full access. */
export class Service {
  #api = advapi32();
  #name: string;
  #handle: Deno.PointerValue;

  constructor(name: string, handle: Deno.PointerValue) {
    this.#name = name;
    this.#handle = handle;
  }

  /** Updates the command line, start type and display name; {@linkcode Service.describe} sets the rest. */
  reconfigure(definition: ServiceDefinition): void {
    const ok = this.#api.ChangeServiceConfigW(
      this.#handle,
      SERVICE_WIN32_OWN_PROCESS,
      SERVICE_AUTO_START,
      SERVICE_NO_CHANGE,
      wide(definition.binaryPath),
      null, // load order group, tag, dependencies, account, password: unchanged
      null,
      null,
      null,
      null,
      wide(definition.displayName),
    );
    if (!ok) throw win32Error(`reconfiguring the service ${this.#name}`);
  }

  /**
   * Sets the description and the failure actions (restart after each
   * delay). Returns false when the service manager does not take the
   * "failures include a non-zero exit code" flag (Wine's does not).
   */
  describe(definition: ServiceDefinition): boolean {
    if (!this.#config2(SERVICE_CONFIG_DESCRIPTION, serviceDescription(definition.description))) {
      throw win32Error(`describing the service ${this.#name}`);
    }
    const failure = restartActions(definition.resetPeriod, definition.restartDelays);
    if (!this.#config2(SERVICE_CONFIG_FAILURE_ACTIONS, failure)) {
      throw win32Error(`setting what happens when ${this.#name} fails`);
    }
    // SERVICE_FAILURE_ACTIONS_FLAG { BOOL fFailureActionsOnNonCrashFailures; }: a start
    // that fails, or a stop with a non-zero exit code, counts as a failure too.
    return this.#config2(SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, new Uint32Array([1]));
  }

  /** Starts it (nothing to do when it is running already). */
  start(): void {
    if (this.#api.StartServiceW(this.#handle, 0, null)) return;
    const code = lastError();
    if (code !== ERROR_SERVICE_ALREADY_RUNNING) {
      throw win32Error(`starting the service ${this.#name}`, code);
    }
  }

  /** Asks it to stop (nothing to do when it is not running). */
  stop(): void {
    if (this.#api.ControlService(this.#handle, SERVICE_CONTROL_STOP, new Uint32Array(7))) return;
    const code = lastError();
    if (code !== ERROR_SERVICE_NOT_ACTIVE) {
      throw win32Error(`stopping the service ${this.#name}`, code);
    }
  }

  /** Its state, exit codes and process. */
  query(): ServiceState {
    // SERVICE_STATUS_PROCESS: nine DWORDs.
    const status = new Uint32Array(9);
    const ok = this.#api.QueryServiceStatusEx(
      this.#handle,
      SC_STATUS_PROCESS_INFO,
      status,
      status.byteLength,
      new Uint32Array(1),
    );
    if (!ok) throw win32Error(`querying the service ${this.#name}`);
    const state = status[STATUS.currentState];
    return {
      state,
      stateName: STATE_NAMES[state] ?? String(state),
      win32ExitCode: status[STATUS.win32ExitCode],
      serviceExitCode: status[STATUS.serviceSpecificExitCode],
      pid: status[STATUS.processId],
    };
  }

  /** Marks it for deletion: it goes once stopped and every handle to it is closed. */
  delete(): void {
    if (!this.#api.DeleteService(this.#handle)) {
      const code = lastError();
      if (code !== ERROR_SERVICE_MARKED_FOR_DELETE) {
        throw win32Error(`deleting the service ${this.#name}`, code);
      }
    }
  }

  close(): void {
    this.#api.CloseServiceHandle(this.#handle);
  }

  #config2(level: number, info: Uint8Array | Uint32Array): boolean {
    return this.#api.ChangeServiceConfig2W(this.#handle, level, info) !== 0;
  }
}

function win32Error(what: string, code = lastError()): RuntimeError {
  if (code === ERROR_ACCESS_DENIED) {
    return new RuntimeError(`${what} was denied: run echod service as Administrator`);
  }
  if (code === ERROR_SERVICE_MARKED_FOR_DELETE) {
    return new RuntimeError(
      `${what} failed: the service is marked for deletion; close services.msc (and anything else holding it) and try again`,
    );
  }
  return new RuntimeError(`${what} failed: Win32 error ${code}`);
}

/** How a stopped service last ended, in words. */
export function lastExit(state: ServiceState): string {
  return state.win32ExitCode === ERROR_SERVICE_SPECIFIC_ERROR
    ? `echod exit code ${state.serviceExitCode}`
    : `Win32 exit code ${state.win32ExitCode}`;
}
