/**
 * A log file that cannot be written: reopened on SIGHUP into a path that is
 * gone, a directory, read-only, immutable, or on a file system out of inodes;
 * or written on a full disk. Echoing goes on, SIGTERM still stops echod, the
 * failure is said once on stderr, lines meanwhile are dropped and counted,
 * and the count is written in a "log lines dropped" note once writing works
 * again (after SIGHUP or the periodic retry).
 *
 * POSIX only: the reopen comes on SIGHUP, and the failures are made with
 * mounts and chattr.
 */

import assert from "node:assert/strict";
import { connect, roundTrip } from "../../_client.ts";
import {
  type Echod,
  LINUX,
  type LogRecord,
  SIGNALS,
  skipUnless,
  startEchod,
  waitForLogFile,
} from "../../_echod.ts";
import { has } from "../../_programs.ts";

// The log file is reopened on SIGHUP, which Windows does not have.
function ignore(test: string): boolean {
  return skipUnless(SIGNALS, test, "it sends SIGHUP (Windows has none: no log reopen there)");
}

/**
 * What echod logs on top of the connections: at debug level that no ECHOD_*
 * variable was read (no --allow-env), the listening line, then SIGTERM's two.
 */
const LIFECYCLE_LINES = 4;

/** Whether the test may mount file systems (root on Linux). */
const MAY_MOUNT = LINUX && Deno.uid() === 0;

/** `ignore` for a test that mounts file systems or uses chattr: root on Linux, and the tools. */
function ignoreUnlessRoot(test: string, tools = ["mount", "umount"]): boolean {
  if (ignore(test)) return true;
  if (skipUnless(MAY_MOUNT, test, "it mounts file systems (needs root on Linux)")) return true;
  const missing = tools.filter((tool) => !has(tool));
  return skipUnless(missing.length === 0, test, `it needs ${missing.join(", ")}`);
}

/** Runs a tool the test needs (mount, umount, chattr) and throws with its stderr on failure. */
async function run(program: string, ...args: string[]): Promise<void> {
  const command = new Deno.Command(program, { args, stdout: "null", stderr: "piped" });
  const { code, stderr } = await command.output();
  if (code !== 0) {
    throw new Error(`${program} ${args.join(" ")}: ${new TextDecoder().decode(stderr).trim()}`);
  }
}

/** Fills the file system `file` is on with it, then frees `leave` bytes of it again. */
async function fillUp(file: string, leave: number): Promise<void> {
  const filler = await Deno.open(file, { write: true, create: true });
  const block = new Uint8Array(64 * 1024);
  try {
    for (;;) await filler.write(block);
  } catch (error) {
    if (!(error instanceof Error) || !/No space left/.test(error.message)) throw error;
  }
  const { size } = await filler.stat();
  await filler.truncate(Math.max(0, size - leave));
  filler.close();
}

/** Creates empty files in `dir` until the file system has no inode left. */
async function useAllInodes(dir: string): Promise<void> {
  for (let i = 0;; i++) {
    try {
      await Deno.writeFile(`${dir}/inode-${i}`, new Uint8Array(0));
    } catch (error) {
      if (!(error instanceof Error) || !/No space left/.test(error.message)) throw error;
      return;
    }
  }
}

/** Makes `count` connections one after another, each echoing once: 2 log lines each at debug. */
async function echoes(port: number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const conn = await connect("127.0.0.1", port);
    assert.equal(await roundTrip(conn, `echo ${i}`), `echo ${i}`);
    conn.close();
  }
}

/** Whether a record is the note counting the lines dropped before it. */
function isNote(record: LogRecord): boolean {
  return record.message.includes("log lines dropped");
}

/** The lines every record in `records` accounts for: itself, or the count a note gives. */
function accountedLines(records: LogRecord[]): { written: number; dropped: number } {
  const notes = records.filter(isNote);
  return {
    written: records.length - notes.length,
    dropped: notes.reduce((sum, note) => sum + (note.dropped as number), 0),
  };
}

/** Stops echod with SIGTERM, asserting it exits with 0 within 5 s; returns how long it took. */
async function stopPromptly(echod: Echod): Promise<number> {
  const began = performance.now();
  echod.kill("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const status = await Promise.race([
    echod.exited(),
    new Promise<null>((r) => timer = setTimeout(() => r(null), 5_000)),
  ]);
  clearTimeout(timer);
  if (status === null) echod.kill("SIGKILL");
  assert.ok(status !== null, "SIGTERM did not stop echod within 5 s");
  assert.equal(status.code, 0);
  return performance.now() - began;
}

/** Starts echod at debug level logging to `file` (JSON Lines), and waits for its listening line. */
async function echodLoggingTo(file: string, dir: string): Promise<Echod> {
  const echod = await startEchod(
    ["--log-file", file, "--log-level", "debug", "--stats-interval", "0"],
    { permissions: ["--allow-net", `--allow-write=${dir}`], waitReady: false },
  );
  const records = await waitForLogFile(file, (r) => r.message.includes("listening on"));
  echod.port = records.find((r) => r.message.includes("listening on"))!.port as number;
  return echod;
}

/** One way a SIGHUP's reopen of the log file fails. */
interface ReopenFailure {
  /** What happened to the log file, for the test's name. */
  what: string;
  /** The tools it runs as root (mount, chattr), or none. */
  rootTools: string[];
  /** The error the reopen fails with. */
  error: RegExp;
  /** Prepares `logs` (the log file's folder) before echod starts, e.g. mounts a tmpfs there. */
  prepare?(logs: string): Promise<void>;
  /** Makes the log file impossible to reopen; echod has it open. */
  break(logs: string, file: string): Promise<void>;
  /** Makes it possible again. */
  repair(logs: string, file: string): Promise<void>;
  /** Undoes `prepare` (runs in every case). */
  cleanup?(logs: string): Promise<void>;
  /** How echod learns it may retry: another SIGHUP, or its periodic retry. */
  recovery: "SIGHUP" | "retry";
}

const REOPEN_FAILURES: ReopenFailure[] = [
  {
    what: "its folder removed",
    rootTools: [],
    error: /No such file or directory/,
    break: (logs) => Deno.remove(logs, { recursive: true }),
    repair: (logs) => Deno.mkdir(logs),
    recovery: "SIGHUP",
  },
  {
    what: "a directory in its place",
    rootTools: [],
    error: /Is a directory/,
    async break(_logs, file) {
      await Deno.remove(file);
      await Deno.mkdir(file);
    },
    repair: (_logs, file) => Deno.remove(file),
    recovery: "retry",
  },
  {
    what: "write permission lost (its folder mounted read-only)",
    rootTools: ["mount", "umount"],
    error: /Read-only file system/,
    // A read-only bind mount over the folder: the open descriptor writes on, a new open fails.
    async break(logs) {
      await run("mount", "--bind", logs, logs);
      await run("mount", "-o", "remount,bind,ro", logs);
    },
    repair: (logs) => run("umount", logs),
    cleanup: (logs) => run("umount", logs), // when the test failed before repair
    recovery: "SIGHUP",
  },
  {
    what: "write permission lost (rotated, then its folder made immutable)",
    rootTools: ["chattr"],
    error: /Operation not permitted/,
    async break(logs, file) {
      await Deno.rename(file, `${file}.1`);
      await run("chattr", "+i", logs);
    },
    repair: (logs) => run("chattr", "-i", logs),
    cleanup: (logs) => run("chattr", "-i", logs),
    recovery: "SIGHUP",
  },
  {
    what: "rotated on a file system with no free inode",
    rootTools: ["mount", "umount"],
    error: /No space left on device/,
    prepare: (logs) => run("mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=16", "tmpfs", logs),
    async break(logs, file) {
      await Deno.rename(file, `${file}.1`);
      await useAllInodes(logs);
    },
    async repair(logs) {
      for await (const entry of Deno.readDir(logs)) {
        if (entry.name.startsWith("inode-")) await Deno.remove(`${logs}/${entry.name}`);
      }
    },
    cleanup: (logs) => run("umount", "-l", logs),
    recovery: "SIGHUP",
  },
];

for (const failure of REOPEN_FAILURES) {
  const test = `the log file reopened after ${failure.what}`;
  Deno.test({
    name: `${test}: echoing goes on, one line on stderr, dropped lines counted once it is back`,
    ignore: failure.rootTools.length > 0 ? ignoreUnlessRoot(test, failure.rootTools) : ignore(test),
    async fn() {
      const dir = await Deno.makeTempDir();
      const logs = `${dir}/logs`;
      const file = `${logs}/echod.log`;
      await Deno.mkdir(logs);
      let echod: Echod | undefined;
      try {
        await failure.prepare?.(logs);
        echod = await echodLoggingTo(file, dir);
        await failure.break(logs, file);
        echod.kill("SIGHUP");
        const said = await echod.waitForMessage("cannot reopen the log file");
        assert.match(String(said.error), failure.error);

        // Echoing does not depend on the log; its lines are dropped and counted.
        const connections = 5;
        await echoes(echod.port, connections);

        await failure.repair(logs, file);
        const repaired = performance.now();
        if (failure.recovery === "SIGHUP") echod.kill("SIGHUP");
        await waitForLogFile(file, isNote, 10_000);
        const recovered = performance.now() - repaired;
        await echod.waitForMessage("can be written again");
        const stopMs = await stopPromptly(echod);

        // Every line of those connections is in the file or counted in the one note.
        const records = await readRecords(file);
        const notes = records.filter(isNote);
        assert.equal(notes.length, 1);
        const conns = records.filter((r) => r.logger === "echod.conn").length;
        assert.equal((notes[0].dropped as number) + conns, 2 * connections);
        assert.ok((notes[0].dropped as number) >= connections, "the open lines were dropped");
        // Said once on stderr, not once per line dropped; nothing else there.
        assert.equal(echod.records.filter((r) => r.message.includes("cannot")).length, 1);
        assert.deepEqual(echod.otherLines, []);
        console.log(
          `${failure.what}: ${notes[0].dropped} lines dropped, recovered ${
            recovered.toFixed(0)
          } ms after the repair (${failure.recovery}), SIGTERM took ${stopMs.toFixed(0)} ms`,
        );
      } finally {
        if (echod !== undefined) await stopQuietly(echod);
        await failure.cleanup?.(logs).catch(() => {});
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

/** Kills echod if a failed assertion left it running. */
async function stopQuietly(echod: Echod): Promise<void> {
  try {
    echod.kill("SIGKILL");
  } catch {
    // Already gone.
  }
  await echod.exited();
}

Deno.test({
  name: "SIGTERM stops echod promptly while its log file cannot be reopened",
  ignore: ignore("the SIGTERM-with-a-broken-log test"),
  async fn() {
    const dir = await Deno.makeTempDir();
    const logs = `${dir}/logs`;
    await Deno.mkdir(logs);
    const echod = await echodLoggingTo(`${logs}/echod.log`, dir);
    try {
      await Deno.remove(logs, { recursive: true });
      echod.kill("SIGHUP");
      await echod.waitForMessage("cannot reopen the log file");
      await echoes(echod.port, 3);
      const stopMs = await stopPromptly(echod);
      console.log(`SIGTERM with the log file gone: exited in ${stopMs.toFixed(0)} ms`);
    } finally {
      await stopQuietly(echod);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "on a full disk log lines are dropped whole and counted; the note follows once there is room",
  ignore: ignoreUnlessRoot("the full-disk log test"),
  async fn() {
    const dir = await Deno.makeTempDir();
    const logs = `${dir}/logs`;
    const file = `${logs}/echod.log`;
    await Deno.mkdir(logs);
    await run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", logs);
    let echod: Echod | undefined;
    try {
      echod = await echodLoggingTo(file, dir);
      // Room for a few dozen lines: some are written, one reaches past the end of the room
      // (written in part, then refused), the rest are refused.
      await fillUp(`${logs}/filler`, 8 * 1024);
      const connections = 400;
      await echoes(echod.port, connections);
      await echod.waitForMessage("cannot write the log file");

      await Deno.remove(`${logs}/filler`);
      const freed = performance.now();
      const conn = await connect("127.0.0.1", echod.port);
      assert.equal(await roundTrip(conn, "room again"), "room again");
      const last = `:${(conn.localAddr as Deno.NetAddr).port}`;
      conn.close();
      await waitForLogFile(file, isNote, 10_000);
      const recovered = performance.now() - freed;
      // The last connection's close line: nothing is left open to drain, nothing else logged.
      await waitForLogFile(file, (r) => r.message.startsWith("close") && isPeer(r, last));
      await echod.waitForMessage("can be written again");

      const stopMs = await stopPromptly(echod);
      // Every line parses (none torn, none merged), and written plus dropped is all that was
      // logged.
      const records = await readRecords(file);
      const { written, dropped } = accountedLines(records);
      assert.equal(written + dropped, LIFECYCLE_LINES + 2 * (connections + 1));
      assert.ok(dropped > 0 && written > LIFECYCLE_LINES, `${written} written, ${dropped} dropped`);
      assert.equal(echod.records.filter((r) => r.message.includes("cannot")).length, 1);
      assert.deepEqual(echod.otherLines, []);
      console.log(
        `full 1 MiB tmpfs with 8 KiB left: ${written} lines written, ${dropped} dropped (${
          records.filter(isNote).length
        } note), note ${recovered.toFixed(0)} ms after space was freed, SIGTERM took ${
          stopMs.toFixed(0)
        } ms`,
      );
    } finally {
      if (echod !== undefined) await stopQuietly(echod);
      await run("umount", "-l", logs).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Whether a connection record is about the client on local port `suffix` (`:PORT`). */
function isPeer(record: LogRecord, suffix: string): boolean {
  return record.logger === "echod.conn" && String(record.peer).endsWith(suffix);
}

/** Every record in a JSON Lines log file; fails naming the line that is not one whole record. */
async function readRecords(file: string): Promise<LogRecord[]> {
  const lines = (await Deno.readTextFile(file)).split("\n");
  assert.equal(lines.pop(), "", "the log ends in the middle of a line");
  return lines.map((line, i) => {
    try {
      return JSON.parse(line);
    } catch {
      throw new Error(`line ${i + 1} of the log is torn: ${line}`);
    }
  });
}
