/**
 * The container image (`deno task image`) as Docker runs it: echo through a
 * port published on 127.0.0.1, the greeting naming the container, settings
 * from ECHOD_* variables, uid 65532 on a read-only root, a drain on
 * `docker stop` mid-transfer with /readyz turning 503, nothing but the
 * server in it, and an arm64 build whose runtime is an AArch64 binary.
 *
 * In the fault suite: it is Linux-only, needs root or a running dockerd,
 * starts a system daemon and builds images, none of which belongs in the
 * quick, portable main suite.
 */

import assert from "node:assert/strict";
import {
  closedByPeer,
  closeQuietly,
  connect,
  pattern,
  readExactly,
  roundTrip,
  udpSocket,
  writeAll,
} from "../../_client.ts";
import { linuxOnly, skipUnless } from "../../_echod.ts";
import { has } from "../../_programs.ts";
import { connectTls, testCertificates } from "../../_tls.ts";
import {
  type Container,
  type ContainerOptions,
  DOCKER_UNAVAILABLE,
  type DockerSession,
  openDocker,
  runContainer,
  testImage,
} from "../../_docker.ts";
import { readLine } from "../../../lib/net.ts";
import { buildImage } from "../../../scripts/image.ts";
import { ImageError, PLATFORMS, ROOT } from "../../../scripts/image/context.ts";
import { docker } from "../../../scripts/image/docker.ts";

const MiB = 1024 * 1024;

/** GETs `path` from a metrics port published on 127.0.0.1. */
async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, text: (await response.text()).trim() };
}

/** The file names in a container's file system (`docker export`, listed by tar). */
async function fileList(session: DockerSession, container: string): Promise<string[]> {
  const exporter = new Deno.Command(session.client.program, {
    args: ["export", container],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const tar = new Deno.Command("tar", { args: ["-t"], stdin: "piped", stdout: "piped" }).spawn();
  const [, listing] = await Promise.all([exporter.stdout.pipeTo(tar.stdin), tar.output()]);
  assert.ok((await exporter.status).success, "docker export failed");
  return new TextDecoder().decode(listing.stdout).split("\n").filter((line) => line !== "");
}

Deno.test({
  name: "the container image",
  ignore: skipUnless(DOCKER_UNAVAILABLE === undefined, "the container tests", DOCKER_UNAVAILABLE!),
}, async (t) => {
  const session = await openDocker();
  let image = "";
  /** Runs `fn` with a container of the image, removed after. */
  async function withContainer(
    options: ContainerOptions,
    fn: (container: Container) => Promise<void>,
  ): Promise<void> {
    const container = await runContainer(session, image, options);
    try {
      await fn(container);
    } finally {
      await container.remove();
    }
  }
  try {
    const buildStart = performance.now();
    image = await testImage(session);
    console.log(
      `image ${image} ready in ${((performance.now() - buildStart) / 1000).toFixed(1)} s` +
        (session.started ? ` (dockerd started for this run in ${session.startSeconds} s)` : ""),
    );

    await t.step(
      "echoes TCP and UDP (ECHOD_UDP) over IPv4 through ports published on 127.0.0.1",
      async () => {
        await withContainer({ publishUdp: [40007], env: { ECHOD_UDP: "true" } }, async (echod) => {
          const conn = await connect("127.0.0.1", echod.ports.get(40007)!);
          try {
            const data = pattern(1 * MiB, 7);
            await Promise.all([
              writeAll(conn, data),
              readExactly(conn, data.length).then((back) => assert.deepEqual(back, data)),
            ]);
          } finally {
            closeQuietly(conn);
          }
          const socket = udpSocket("127.0.0.1");
          try {
            const datagram = pattern(512, 9);
            const to = {
              transport: "udp" as const,
              hostname: "127.0.0.1",
              port: echod.udpPorts.get(40007)!,
            };
            await socket.send(datagram, to);
            const [back] = await socket.receive();
            assert.deepEqual(back, datagram);
          } finally {
            socket.close();
          }
        });
      },
    );

    await t.step("the greeting names the container's host name and an env variable", async () => {
      await withContainer({
        hostname: "echod-host-1",
        env: { ECHOD_GREETING: "hello from {host} as {env:POD_NAME}", POD_NAME: "echod-7f9c" },
        // Were no greeting sent, the read below ends here, not after the default 5m.
        args: ["--idle-timeout", "10s"],
      }, async (echod) => {
        const conn = await connect("127.0.0.1", echod.ports.get(40007)!);
        try {
          const { line, rest } = await readLine(conn);
          assert.equal(line, "hello from echod-host-1 as echod-7f9c");
          assert.equal(rest.length, 0);
          assert.equal(await roundTrip(conn, "after"), "after");
        } finally {
          closeQuietly(conn);
        }
      });
    });

    await t.step(
      "ECHOD_PORT and ECHOD_MAX_CONNS configure it: one connection on 7007, a second refused",
      async () => {
        await withContainer({
          publish: [7007],
          env: { ECHOD_PORT: "7007", ECHOD_MAX_CONNS: "1" },
        }, async (echod) => {
          assert.equal(echod.echod.ready!.port, 7007);
          const port = echod.ports.get(7007)!;
          const first = await connect("127.0.0.1", port);
          try {
            assert.equal(await roundTrip(first, "first"), "first");
            const second = await connect("127.0.0.1", port);
            try {
              assert.ok(await closedByPeer(second), "the second connection was not refused");
            } finally {
              closeQuietly(second);
            }
            const refusal = await echod.echod.waitForMessage("refused");
            assert.equal(refusal.reason, "max-conns");
            assert.equal(await roundTrip(first, "still"), "still");
          } finally {
            closeQuietly(first);
          }
        });
      },
    );

    await t.step("runs as uid and gid 65532 on a read-only root file system", async () => {
      await withContainer({}, async (echod) => {
        assert.equal(await echod.inspect("{{.Config.User}}"), "65532:65532");
        assert.equal(await echod.inspect("{{.HostConfig.ReadonlyRootfs}}"), "true");
        // The process itself, seen from the host.
        const pid = await echod.inspect("{{.State.Pid}}");
        const status = new TextDecoder().decode(
          (await new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).output()).stdout,
        );
        assert.match(status, /^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
        assert.match(status, /^Gid:\s+65532\s+65532\s+65532\s+65532$/m);
        assert.equal(await echoOnce(echod, "read-only"), "read-only");
      });
    });

    await t.step({
      name:
        "serves TLS from a certificate mounted at /etc/echod/tls (ECHOD_TLS_CERT, ECHOD_TLS_KEY)",
      fn: async () => {
        // As a Kubernetes Secret is mounted: tls.crt and tls.key, readable by the pod's user.
        const { cert, key } = testCertificates();
        const secret = await Deno.makeTempDir({ prefix: "echod-secret-" });
        try {
          await Deno.copyFile(cert, `${secret}/tls.crt`);
          await Deno.copyFile(key, `${secret}/tls.key`);
          for (const file of ["tls.crt", "tls.key"]) await Deno.chmod(`${secret}/${file}`, 0o644);
          await Deno.chmod(secret, 0o755); // made 0700, which uid 65532 could not enter
          await withContainer({
            mounts: { "/etc/echod/tls": secret },
            env: {
              ECHOD_TLS_CERT: "/etc/echod/tls/tls.crt",
              ECHOD_TLS_KEY: "/etc/echod/tls/tls.key",
            },
          }, async (echod) => {
            const conn = await connectTls("127.0.0.1", echod.ports.get(40007)!);
            try {
              assert.equal(await roundTrip(conn, "over TLS"), "over TLS");
            } finally {
              closeQuietly(conn);
            }
          });
        } finally {
          await Deno.remove(secret, { recursive: true });
        }
      },
    });

    await t.step(
      "holds only the server: no shell, no package manager, no tests, bench or docs",
      async () => {
        await withContainer({}, async (echod) => {
          const files = await fileList(session, echod.name);
          assert.ok(files.includes("usr/local/bin/deno"), "no deno in the image");
          assert.ok(files.includes("app/main.ts"), "no main.ts in the image");
          const unwanted = files.filter((file) =>
            /(^|\/)(sh|bash|dash|busybox|apt|apt-get|dpkg)$/.test(file) ||
            /^app\/(tests|bench|docs|scripts)\//.test(file) ||
            /^app\/lib\/(bench|client|service)\/mod\.ts$/.test(file)
          );
          assert.deepEqual(unwanted, []);
          console.log(`${files.length} entries in the image's file system`);
        });
      },
    );

    await t.step(
      "docker stop mid-transfer: /readyz 503 while still accepting, every byte echoed, exit 0",
      async () => {
        await withContainer({
          publish: [40007, 9090],
          env: {
            ECHOD_METRICS: "[::]:9090",
            ECHOD_SHUTDOWN_DELAY: "3s",
            ECHOD_DRAIN_TIMEOUT: "60s",
          },
        }, async (echod) => {
          const port = echod.ports.get(40007)!;
          const metrics = echod.ports.get(9090)!;
          assert.deepEqual(await get(metrics, "/readyz"), { status: 200, text: "ready" });
          const data = pattern(64 * MiB, 11);
          const conn = await connect("127.0.0.1", port);
          let received = 0;
          const reader = (async () => {
            const buf = new Uint8Array(256 * 1024);
            for (;;) {
              const n = await conn.read(buf);
              if (n === null) return;
              // Every byte back is the byte sent at that offset: an exact prefix.
              assert.ok(received + n <= data.length, "more bytes back than sent");
              assert.deepEqual(buf.subarray(0, n), data.subarray(received, received + n));
              received += n;
            }
          })();
          const start = performance.now();
          try {
            // A quarter, then the stop, so that SIGTERM lands mid-transfer.
            await writeAll(conn, data.subarray(0, 16 * MiB));
            const stopping = echod.stop(90);
            stopping.catch(() => {}); // awaited below; a failure before that removes the container
            const stopAsked = performance.now();
            await echod.echod.waitForMessage("received SIGTERM");
            assert.deepEqual(await get(metrics, "/readyz"), { status: 503, text: "draining" });
            assert.equal((await get(metrics, "/healthz")).status, 200);
            // Within --shutdown-delay new connections are still served.
            assert.equal(await echoOnce(echod, "late"), "late");
            await writeAll(conn, data.subarray(16 * MiB));
            await conn.closeWrite();
            await reader;
            const transfer = performance.now() - start;
            await stopping;
            const stopped = performance.now() - stopAsked;
            assert.equal(received, data.length);
            assert.equal(await echod.inspect("{{.State.ExitCode}}"), "0");
            assert.ok(stopped >= 3000, `stopped ${stopped} ms after SIGTERM, within the delay`);
            const totals = await echod.echod.waitForMessage("stopped");
            assert.equal(totals.bytesIn, data.length + "late".length);
            assert.equal(totals.bytesOut, data.length + "late".length);
            console.log(
              `64 MiB echoed in ${(transfer / 1000).toFixed(2)} s through docker stop; ` +
                `stopped ${(stopped / 1000).toFixed(2)} s after it was asked (--shutdown-delay 3s)`,
            );
          } finally {
            closeQuietly(conn);
            await reader.catch(() => {});
          }
        });
      },
    );

    await t.step("the arm64 image builds, and its runtime is an AArch64 binary", async () => {
      const start = performance.now();
      let tag: string;
      try {
        ({ tag } = await buildImage(PLATFORMS["linux/arm64"], {
          tag: "echod:test-arm64",
          context: `${ROOT}dist/image/test-arm64`,
          quiet: true,
        }));
      } catch (error) {
        // An Ubuntu host's apt sources list no arm64 packages: say so, as a skip.
        if (error instanceof ImageError && error.message.includes("apt sources have no arm64")) {
          console.log(`skipping the arm64 image test: ${error.message}`);
          return;
        }
        throw error;
      }
      const seconds = ((performance.now() - start) / 1000).toFixed(1);
      assert.equal(
        (await docker(session.client, ["image", "inspect", "--format", "{{.Architecture}}", tag]))
          .trim(),
        "arm64",
      );
      const name = (await docker(session.client, ["create", tag])).trim();
      try {
        const header = await elfHeader(session, name, "/usr/local/bin/deno");
        assert.deepEqual([...header.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], "not an ELF file");
        assert.equal(header[4], 2, "not a 64-bit ELF file");
        const machine = new DataView(header.buffer, header.byteOffset).getUint16(18, true);
        assert.equal(machine, PLATFORMS["linux/arm64"].elfMachine, `e_machine ${machine}`);
        const size = Number(
          await docker(session.client, ["image", "inspect", "--format", "{{.Size}}", tag]),
        );
        console.log(`arm64 image built in ${seconds} s, ${(size / 1e6).toFixed(1)} MB`);
      } finally {
        await docker(session.client, ["rm", name]);
        // Not kept: a rebuild under the same tag would leave this one dangling.
        await docker(session.client, ["image", "rm", tag]);
      }
    });
  } finally {
    await session.close();
  }
});

/** Connects to the container's echo port, sends `text` and returns what came back. */
async function echoOnce(container: Container, text: string): Promise<string> {
  const conn = await connect("127.0.0.1", container.ports.get(40007)!);
  try {
    return await roundTrip(conn, text);
  } finally {
    closeQuietly(conn);
  }
}

/** The first 20 bytes of `path` in a (created, not started) container, via `docker cp`. */
async function elfHeader(
  session: DockerSession,
  container: string,
  path: string,
): Promise<Uint8Array> {
  // docker cp writes a tar stream: a 512-byte header, then the file.
  const output = await new Deno.Command(session.client.program, {
    args: ["cp", `${container}:${path}`, "-"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  return output.stdout.subarray(512, 532);
}

/** Runs scripts/image.ts with `args` and `env`; its exit code and stderr. */
async function imageScript(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "scripts/image.ts",
      ...args,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr).trim() };
}

Deno.test({
  name: "deno task image: one-line errors for a bad platform or option, no docker, no dockerd",
  ignore: linuxOnly("the image script's errors", "Docker Engine (Linux)"),
}, async () => {
  assert.deepEqual(await imageScript(["--platform", "linux/riscv64"]), {
    code: 2,
    stderr: "image: unknown platform linux/riscv64: use linux/amd64 or linux/arm64",
  });
  const option = await imageScript(["--plattform", "linux/arm64"]);
  assert.equal(option.code, 2);
  assert.match(option.stderr, /^image: Unknown option '--plattform'/);
  assert.doesNotMatch(option.stderr, /\n/);
  // No docker on PATH.
  assert.deepEqual(await imageScript([], { PATH: "/nonexistent" }), {
    code: 1,
    stderr:
      "image: docker is not installed: install Docker (the docker.io package on Debian and Ubuntu)",
  });
  if (!has("docker")) {
    console.log("skipping the no-dockerd case: docker is not installed");
    return;
  }
  // A client whose daemon does not answer.
  const noDaemon = await imageScript([], { DOCKER_HOST: "unix:///nonexistent/docker.sock" });
  assert.equal(noDaemon.code, 1);
  assert.match(
    noDaemon.stderr,
    /^image: dockerd is not running \(docker version failed: .*\): start it \(sudo systemctl start docker, or sudo dockerd &\) and try again$/,
  );
});
