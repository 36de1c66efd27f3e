/**
 * The Win32 service API, through Deno FFI: every Win32 function, structure
 * and constant echod uses is declared here, and only here. Loaded only on
 * Windows, only by `echod service` (it needs `--allow-ffi`).
 *
 * Two halves: the service control dispatcher a running service answers the
 * Service Control Manager (SCM) with, and the management calls that create,
 * configure, start, stop, query and delete a service (what `sc.exe` does).
 *
 * @module
 */

import { RuntimeError } from "../errors.ts";

// SERVICE_STATUS.dwServiceType (and CreateServiceW): the only service in its own process.
export const SERVICE_WIN32_OWN_PROCESS = 0x10;

// SERVICE_STATUS.dwCurrentState.
export const SERVICE_STOPPED = 1;
export const SERVICE_START_PENDING = 2;
export const SERVICE_STOP_PENDING = 3;
export const SERVICE_RUNNING = 4;

/** What `dwCurrentState` is called in `sc query`. */
export const STATE_NAMES: Record<number, string> = {
  1: "STOPPED",
  2: "START_PENDING",
  3: "STOP_PENDING",
  4: "RUNNING",
  5: "CONTINUE_PENDING",
  6: "PAUSE_PENDING",
  7: "PAUSED",
};

// SERVICE_STATUS.dwControlsAccepted: stop, and the system shutting down.
export const SERVICE_ACCEPT_STOP = 0x1;
export const SERVICE_ACCEPT_SHUTDOWN = 0x4;

// The controls a HandlerEx is given (and ControlService sends).
export const SERVICE_CONTROL_STOP = 1;
export const SERVICE_CONTROL_INTERROGATE = 4;
export const SERVICE_CONTROL_SHUTDOWN = 5;

// Win32 error codes.
export const NO_ERROR = 0;
export const ERROR_CALL_NOT_IMPLEMENTED = 120;
/** dwWin32ExitCode saying "see dwServiceSpecificExitCode" (echod's own exit code). */
export const ERROR_SERVICE_SPECIFIC_ERROR = 1066;
const ERROR_ACCESS_DENIED = 5;
const ERROR_SERVICE_ALREADY_RUNNING = 1056;
const ERROR_SERVICE_DOES_NOT_EXIST = 1060;
const ERROR_SERVICE_NOT_ACTIVE = 1062;
const ERROR_SERVICE_MARKED_FOR_DELETE = 1072;

// Access rights.
const SC_MANAGER_ALL_ACCESS = 0xf003f;
const SERVICE_ALL_ACCESS = 0xf01ff;

// CreateServiceW / ChangeServiceConfigW.
const SERVICE_AUTO_START = 2;
const SERVICE_ERROR_NORMAL = 1;
const SERVICE_NO_CHANGE = 0xffffffff;

// ChangeServiceConfig2W info levels.
const SERVICE_CONFIG_DESCRIPTION = 1;
const SERVICE_CONFIG_FAILURE_ACTIONS = 2;
const SERVICE_CONFIG_FAILURE_ACTIONS_FLAG = 4;

// SC_ACTION.Type: restart the service.
const SC_ACTION_RESTART = 1;

// QueryServiceStatusEx info level: SERVICE_STATUS_PROCESS.
const SC_STATUS_PROCESS_INFO = 0;

/**
 * SERVICE_STATUS: seven DWORDs, in this order (SERVICE_STATUS_PROCESS adds
 * dwProcessId and dwServiceFlags).
 */
export const STATUS = {
  serviceType: 0,
  currentState: 1,
  controlsAccepted: 2,
  win32ExitCode: 3,
  serviceSpecificExitCode: 4,
  checkPoint: 5,
  waitHint: 6,
  processId: 7,
} as const;

const ADVAPI32 = {
  // BOOL StartServiceCtrlDispatcherW(const SERVICE_TABLE_ENTRYW *lpServiceStartTable):
  // blocks its thread until every service of the process is stopped.
  StartServiceCtrlDispatcherW: { parameters: ["buffer"], result: "i32", nonblocking: true },
  // SERVICE_STATUS_HANDLE RegisterServiceCtrlHandlerExW(LPCWSTR, LPHANDLER_FUNCTION_EX, LPVOID)
  RegisterServiceCtrlHandlerExW: {
    parameters: ["buffer", "function", "pointer"],
    result: "pointer",
  },
  // BOOL SetServiceStatus(SERVICE_STATUS_HANDLE, LPSERVICE_STATUS)
  SetServiceStatus: { parameters: ["pointer", "buffer"], result: "i32" },
  // SC_HANDLE OpenSCManagerW(LPCWSTR lpMachineName, LPCWSTR lpDatabaseName, DWORD dwDesiredAccess)
  OpenSCManagerW: { parameters: ["buffer", "buffer", "u32"], result: "pointer" },
  // SC_HANDLE OpenServiceW(SC_HANDLE hSCManager, LPCWSTR lpServiceName, DWORD dwDesiredAccess)
  OpenServiceW: { parameters: ["pointer", "buffer", "u32"], result: "pointer" },
  // SC_HANDLE CreateServiceW(hSCManager, lpServiceName, lpDisplayName, dwDesiredAccess,
  //   dwServiceType, dwStartType, dwErrorControl, lpBinaryPathName, lpLoadOrderGroup,
  //   lpdwTagId, lpDependencies, lpServiceStartName, lpPassword)
  CreateServiceW: {
    parameters: [
      "pointer",
      "buffer",
      "buffer",
      "u32",
      "u32",
      "u32",
      "u32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "pointer",
  },
  // BOOL ChangeServiceConfigW(hService, dwServiceType, dwStartType, dwErrorControl,
  //   lpBinaryPathName, lpLoadOrderGroup, lpdwTagId, lpDependencies, lpServiceStartName,
  //   lpPassword, lpDisplayName)
  ChangeServiceConfigW: {
    parameters: [
      "pointer",
      "u32",
      "u32",
      "u32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  // BOOL ChangeServiceConfig2W(SC_HANDLE hService, DWORD dwInfoLevel, LPVOID lpInfo)
  ChangeServiceConfig2W: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  // BOOL StartServiceW(SC_HANDLE hService, DWORD dwNumServiceArgs, LPCWSTR *lpServiceArgVectors)
  StartServiceW: { parameters: ["pointer", "u32", "pointer"], result: "i32" },
  // BOOL ControlService(SC_HANDLE hService, DWORD dwControl, LPSERVICE_STATUS lpServiceStatus)
  ControlService: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  // BOOL QueryServiceStatusEx(hService, InfoLevel, lpBuffer, cbBufSize, pcbBytesNeeded)
  QueryServiceStatusEx: {
    parameters: ["pointer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
  },
  // BOOL DeleteService(SC_HANDLE hService)
  DeleteService: { parameters: ["pointer"], result: "i32" },
  // BOOL CloseServiceHandle(SC_HANDLE hSCObject)
  CloseServiceHandle: { parameters: ["pointer"], result: "i32" },
} as const;

const KERNEL32 = {
  // DWORD GetLastError(void)
  GetLastError: { parameters: [], result: "u32" },
} as const;

/** `VOID WINAPI ServiceMain(DWORD dwArgc, LPWSTR *lpszArgv)` */
export const SERVICE_MAIN = { parameters: ["u32", "pointer"], result: "void" } as const;

/**
 * `DWORD WINAPI HandlerEx(DWORD dwControl, DWORD dwEventType, LPVOID
 * lpEventData, LPVOID lpContext)`
 */
export const HANDLER_EX = {
  parameters: ["u32", "u32", "pointer", "pointer"],
  result: "u32",
} as const;

/** advapi32.dll, as declared above. */
export type Advapi32 = Deno.DynamicLibrary<typeof ADVAPI32>["symbols"];

let libraries:
  | {
    advapi32: Deno.DynamicLibrary<typeof ADVAPI32>;
    kernel32: Deno.DynamicLibrary<typeof KERNEL32>;
  }
  | undefined;

/** Loads advapi32.dll (once). */
export function advapi32(): Advapi32 {
  libraries ??= {
    advapi32: Deno.dlopen("advapi32.dll", ADVAPI32),
    kernel32: Deno.dlopen("kernel32.dll", KERNEL32),
  };
  return libraries.advapi32.symbols;
}

/** Unloads the libraries, so that nothing keeps the process alive. */
export function closeLibraries(): void {
  libraries?.advapi32.close();
  libraries?.kernel32.close();
  libraries = undefined;
}

/** A NUL-terminated UTF-16 string, as the W functions take. */
export function wide(text: string): Uint16Array {
  const out = new Uint16Array(text.length + 1);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** A pointer as the number a structure's pointer field holds. */
export function address(pointer: Deno.PointerValue | Uint16Array | Uint32Array): bigint {
  const value = pointer instanceof Uint16Array || pointer instanceof Uint32Array
    ? Deno.UnsafePointer.of(pointer)
    : pointer;
  return BigInt(Deno.UnsafePointer.value(value));
}

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

  /** Creates the service `name`, started automatically at boot as LocalSystem. */
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
      null,
      null,
      null,
      null,
      null,
    );
    if (handle === null) throw win32Error(`creating the service ${name}`);
    const service = new Service(name, handle);
    service.describe(definition);
    return service;
  }

  close(): void {
    this.#api.CloseServiceHandle(this.#handle);
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

  /** Updates the command line, start type and display name, then the rest of `definition`. */
  reconfigure(definition: ServiceDefinition): void {
    const ok = this.#api.ChangeServiceConfigW(
      this.#handle,
      SERVICE_WIN32_OWN_PROCESS,
      SERVICE_AUTO_START,
      SERVICE_NO_CHANGE,
      wide(definition.binaryPath),
      null,
      null,
      null,
      null,
      null,
      wide(definition.displayName),
    );
    if (!ok) throw win32Error(`reconfiguring the service ${this.#name}`);
    this.describe(definition);
  }

  /**
   * Sets the description and the failure actions (restart after each
   * delay). Returns false when the service manager does not take the
   * "failures include a non-zero exit code" flag (Wine's does not).
   */
  describe(definition: ServiceDefinition): boolean {
    // SERVICE_DESCRIPTIONW { LPWSTR lpDescription; }
    const text = wide(definition.description);
    if (!this.#config2(SERVICE_CONFIG_DESCRIPTION, new BigUint64Array([address(text)]))) {
      throw win32Error(`describing the service ${this.#name}`);
    }
    // SC_ACTION[] { SC_ACTION_TYPE Type; DWORD Delay; }
    const actions = new Uint32Array(definition.restartDelays.flatMap((delay) => [
      SC_ACTION_RESTART,
      delay,
    ]));
    // SERVICE_FAILURE_ACTIONSW (x64): DWORD dwResetPeriod (+4 padding); LPWSTR
    // lpRebootMsg; LPWSTR lpCommand; DWORD cActions (+4 padding); SC_ACTION *lpsaActions.
    const failure = new BigUint64Array([
      BigInt(definition.resetPeriod),
      0n,
      0n,
      BigInt(definition.restartDelays.length),
      address(actions),
    ]);
    if (!this.#config2(SERVICE_CONFIG_FAILURE_ACTIONS, failure)) {
      throw win32Error(`setting what happens when ${this.#name} fails`);
    }
    // SERVICE_FAILURE_ACTIONS_FLAG { BOOL fFailureActionsOnNonCrashFailures; }: a start
    // that fails, or a stop with a non-zero exit code, counts as a failure too.
    return this.#config2(SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, new Uint32Array([1]));
  }

  /** Starts it; true when it was already running. */
  start(): boolean {
    if (this.#api.StartServiceW(this.#handle, 0, null)) return false;
    const code = lastError();
    if (code === ERROR_SERVICE_ALREADY_RUNNING) return true;
    throw win32Error(`starting the service ${this.#name}`, code);
  }

  /** Asks it to stop; false when it was not running. */
  stop(): boolean {
    if (this.#api.ControlService(this.#handle, SERVICE_CONTROL_STOP, new Uint32Array(7))) {
      return true;
    }
    const code = lastError();
    if (code === ERROR_SERVICE_NOT_ACTIVE) return false;
    throw win32Error(`stopping the service ${this.#name}`, code);
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

  #config2(level: number, info: BigUint64Array | Uint32Array): boolean {
    return this.#api.ChangeServiceConfig2W(this.#handle, level, info) !== 0;
  }
}

/** The calling thread's last Win32 error. */
export function lastError(): number {
  advapi32();
  return libraries!.kernel32.symbols.GetLastError();
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
