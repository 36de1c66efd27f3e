/**
 * The Win32 service API, through Deno FFI: every Win32 function, structure
 * and constant echod uses is declared here, and only here. Loaded only on
 * Windows, only by `echod service` (it needs `--allow-ffi`).
 *
 * Declarations only, and the structures built for them: the service control
 * dispatcher a running service answers the Service Control Manager (SCM)
 * with (used by `windows_service.ts`), and the management calls that
 * create, configure, start, stop, query and delete a service (used by
 * `scm.ts`, what `sc.exe` does).
 *
 * @module
 */

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
export const ERROR_ACCESS_DENIED = 5;
export const ERROR_SERVICE_ALREADY_RUNNING = 1056;
export const ERROR_SERVICE_DOES_NOT_EXIST = 1060;
export const ERROR_SERVICE_NOT_ACTIVE = 1062;
export const ERROR_SERVICE_MARKED_FOR_DELETE = 1072;

// Access rights.
export const SC_MANAGER_ALL_ACCESS = 0xf003f;
export const SERVICE_ALL_ACCESS = 0xf01ff;

// CreateServiceW / ChangeServiceConfigW.
export const SERVICE_AUTO_START = 2;
export const SERVICE_ERROR_NORMAL = 1;
export const SERVICE_NO_CHANGE = 0xffffffff;

// ChangeServiceConfig2W info levels.
export const SERVICE_CONFIG_DESCRIPTION = 1;
export const SERVICE_CONFIG_FAILURE_ACTIONS = 2;
export const SERVICE_CONFIG_FAILURE_ACTIONS_FLAG = 4;

// SC_ACTION.Type: restart the service.
const SC_ACTION_RESTART = 1;

// QueryServiceStatusEx info level: SERVICE_STATUS_PROCESS.
export const SC_STATUS_PROCESS_INFO = 0;

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

function load(): NonNullable<typeof libraries> {
  return libraries ??= {
    advapi32: Deno.dlopen("advapi32.dll", ADVAPI32),
    kernel32: Deno.dlopen("kernel32.dll", KERNEL32),
  };
}

/** advapi32.dll's functions (loaded once). */
export function advapi32(): Advapi32 {
  return load().advapi32.symbols;
}

/** The calling thread's last Win32 error. */
export function lastError(): number {
  return load().kernel32.symbols.GetLastError();
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

/**
 * SERVICE_DESCRIPTIONW `{ LPWSTR lpDescription; }`, with the string after
 * it in the same buffer, so that what it points to lives as long as it.
 */
export function serviceDescription(text: string): Uint8Array {
  const buffer = new Uint8Array(8 + 2 * (text.length + 1));
  const chars = new Uint16Array(buffer.buffer, 8, text.length + 1);
  chars.set(wide(text));
  new BigUint64Array(buffer.buffer, 0, 1)[0] = address(chars);
  return buffer;
}

/**
 * SERVICE_FAILURE_ACTIONSW (x64): DWORD dwResetPeriod (+4 padding); LPWSTR
 * lpRebootMsg; LPWSTR lpCommand; DWORD cActions (+4 padding); SC_ACTION
 * *lpsaActions; then, in the same buffer, the SC_ACTIONs `{ SC_ACTION_TYPE
 * Type; DWORD Delay; }`: a restart after each delay.
 */
export function restartActions(resetPeriod: number, delays: number[]): Uint8Array {
  const buffer = new Uint8Array(40 + 8 * delays.length);
  const actions = new Uint32Array(buffer.buffer, 40, 2 * delays.length);
  actions.set(delays.flatMap((delay) => [SC_ACTION_RESTART, delay]));
  new BigUint64Array(buffer.buffer, 0, 5).set([
    BigInt(resetPeriod),
    0n,
    0n,
    BigInt(delays.length),
    address(actions),
  ]);
  return buffer;
}
