/**
 * Every default of the server, in one place: the library's options, the
 * command line, its help text, the README's options table (checked by
 * `tests/readme_test.ts`) and the service definitions all read them here.
 * Durations are in milliseconds, sizes in bytes; `0` disables a limit.
 *
 * @module
 */

/** Default TCP port (RFC 862 assigns 7, which needs privilege). */
export const DEFAULT_PORT = 40007;

/** Default most connections open at once. */
export const DEFAULT_MAX_CONNS = 10_000;

/** Default most connections open at once from one address. */
export const DEFAULT_MAX_CONNS_PER_IP = 64;

/** Default new connections per second allowed from one address: no limit. */
export const DEFAULT_ACCEPT_RATE = 0;

/** Default idle timeout: five minutes. */
export const DEFAULT_IDLE_TIMEOUT = 300_000;

/** Default maximum connection lifetime: one hour. */
export const DEFAULT_MAX_LIFETIME = 3_600_000;

/** Default time a client has to complete the TLS handshake: five seconds. */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT = 5_000;

/** Default time open connections get to finish on shutdown: ten seconds. */
export const DEFAULT_DRAIN_TIMEOUT = 10_000;

/**
 * Default time echod goes on accepting after SIGTERM while `/readyz` says
 * it is draining: none.
 */
export const DEFAULT_SHUTDOWN_DELAY = 0;

/** Default period of the stats line: a minute. */
export const DEFAULT_STATS_INTERVAL = 60_000;

/** Default worker threads: one, serving in the main thread. */
export const DEFAULT_WORKERS = 1;

/** Default UDP datagrams answered per second per source. */
export const DEFAULT_UDP_RATE = 100;

/** Default UDP datagrams answered per second in all. */
export const DEFAULT_UDP_MAX_RATE = 10_000;

/** Default size of the smallest buffer a connection waits on, and starts with. */
export const DEFAULT_MIN_BUFFER = 256;

/**
 * Default size of a pooled buffer: 64 KiB less 512 bytes. Not a power of
 * two on purpose: a read that fills the buffer is taken to mean more is
 * waiting, and a transfer sent in power-of-two chunks then rarely ends
 * exactly at a full read, which would leave the connection waiting on a
 * pooled buffer.
 */
export const DEFAULT_MAX_BUFFER = 65_024;

/** Default number of large buffers a pool lends at once: about 16 MiB. */
export const DEFAULT_POOL_BUFFERS = 256;

/** The template `--greeting` uses when given without one. */
export const DEFAULT_GREETING =
  "echod {version} on {host} ({local}, {transport}): you are {client}{via}";

/** Default time a `/metrics` client has to send its request head. */
export const DEFAULT_METRICS_REQUEST_TIMEOUT = 5_000;

/** Default `/metrics` requests served at once. */
export const DEFAULT_METRICS_MAX_CONNS = 16;

/** Default log level. */
export const DEFAULT_LOG_LEVEL = "info";

/** Default log format. */
export const DEFAULT_LOG_FORMAT = "text";

/**
 * Shortest time between two log lines about the same kind of repeated
 * failure (failed connections, accept errors, refusals, UDP drops, failed
 * `/metrics` requests): the rest are counted and said with the next line.
 */
export const LOG_INTERVAL = 5_000;
