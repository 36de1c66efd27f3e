/**
 * `serve --workers N` refused in one line where it cannot serve. (Serving
 * with workers, on Linux: `posix/workers_test.ts`.)
 */

import assert from "node:assert/strict";
import { runEchod } from "./_echod.ts";

const linux = Deno.build.os === "linux";

Deno.test("--workers under deno run without --allow-read says what to add", async () => {
  const { code, stderr } = await runEchod(["--port", "0", "--workers", "2"]);
  assert.equal(code, 2);
  assert.equal(
    stderr,
    linux
      ? "echod: --workers needs read permission: add --allow-read to the deno command\n"
      : `echod: --workers needs Linux, where SO_REUSEPORT spreads connections; on ${Deno.build.os} run one process\n`,
  );
});

Deno.test("--workers with TLS is refused in one line (the TLS context cannot be sent to a worker thread)", async () => {
  const { code, stderr } = await runEchod([
    "--workers",
    "2",
    "--tls-cert",
    "c.pem",
    "--tls-key",
    "k.pem",
  ]);
  assert.equal(code, 2);
  assert.equal(stderr, "echod: --workers cannot serve TLS (--tls-cert): run one process for TLS\n");
});
