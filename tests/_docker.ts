/**
 * Docker for the container tests: whether it can run here, a dockerd
 * started for the run when none is (and stopped after), the image built
 * once per content, and containers run attached, so that their JSON log is
 * read like a local echod's ({@linkcode Echod}). Containers are reached only
 * through ports published on 127.0.0.1.
 *
 * @module
 */

import { Echod, ROOT } from "./_echod.ts";
import { has } from "./_programs.ts";
import { buildImage } from "../scripts/image.ts";
import { PLATFORMS } from "../scripts/image/context.ts";
import { daemonAnswer, type Docker, docker, findClient } from "../scripts/image/docker.ts";

const SOCKET = "/var/run/docker.sock";

/**
 * Why the container tests cannot run here, or undefined when they can.
 * Decided without starting anything (the Windows lane imports this file).
 */
export const DOCKER_UNAVAILABLE: string | undefined = whyNoDocker();

function whyNoDocker(): string | undefined {
  if (Deno.build.os !== "linux") {
    return `it needs Docker Engine on Linux (this is ${Deno.build.os})`;
  }
  if (!has("docker")) return "docker is not installed (.ci/run installs docker.io when root)";
  try {
    Deno.statSync(SOCKET);
    return undefined;
  } catch {
    // No dockerd yet: the tests start one if they may.
  }
  if (!has("dockerd")) return "dockerd is not running and is not installed";
  if (Deno.uid() !== 0) return "dockerd is not running and only root may start it";
  return undefined;
}

/** A Docker client with a daemon answering it. */
export interface DockerSession {
  /** The client (the one `deno task image` would use). */
  client: Docker;
  /** Whether this session started dockerd. */
  started: boolean;
  /** How long dockerd took to listen, when this session started it (seconds, rounded). */
  startSeconds?: string;
  /** Stops dockerd if this session started it. */
  close(): Promise<void>;
}

/**
 * A Docker client and a daemon: the running one, or a dockerd started now
 * and ready once it logs that its API listens.
 */
export async function openDocker(): Promise<DockerSession> {
  const client = await findClient();
  if (await daemonAnswer(client) === undefined) {
    return { client, started: false, close: () => Promise.resolve() };
  }
  const start = performance.now();
  const daemon = new Deno.Command("dockerd", { stdin: "null", stdout: "null", stderr: "piped" })
    .spawn();
  const lines = daemon.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const tail: string[] = [];
  let text = "";
  for (;;) {
    const { value, done } = await lines.read();
    if (done) {
      await daemon.status;
      throw new Error(`dockerd exited before listening:\n${tail.join("\n")}`);
    }
    text += value;
    const parts = text.split("\n");
    text = parts.pop()!;
    tail.push(...parts);
    tail.splice(0, Math.max(0, tail.length - 20));
    if (parts.some((line) => line.includes(`API listen on ${SOCKET}`))) break;
  }
  // Keep reading, or dockerd blocks once the pipe is full.
  const drained = (async () => {
    while (!(await lines.read()).done) { /* discarded */ }
  })();
  return {
    client,
    started: true,
    startSeconds: ((performance.now() - start) / 1000).toFixed(1),
    async close() {
      daemon.kill("SIGTERM");
      await daemon.status;
      await drained;
    },
  };
}

/**
 * The amd64 image of the current sources, tagged `echod:test-<hash>`: built
 * unless an image of that tag exists (the hash covers every file that can
 * change it), and older `echod:test-*` images are removed.
 */
export async function testImage(session: DockerSession): Promise<string> {
  const tag = `echod:test-${await sourceHash()}`;
  const existing = await docker(session.client, ["image", "ls", "--quiet", tag]);
  if (existing.trim() !== "") return tag;
  await buildImage(PLATFORMS["linux/amd64"], { tag, quiet: true });
  const older = (await docker(session.client, [
    "image",
    "ls",
    "--format",
    "{{.Repository}}:{{.Tag}}",
    "--filter",
    "reference=echod:test-*",
  ])).split("\n").filter((name) => name !== "" && name !== tag);
  if (older.length > 0) await docker(session.client, ["image", "rm", ...older]);
  return tag;
}

/** SHA-256 (first 12 hex digits) over what goes into the image and how it is built. */
async function sourceHash(): Promise<string> {
  const files = [
    "main.ts",
    "deno.json",
    "deno.lock",
    "deploy/docker/Dockerfile",
    "scripts/image.ts",
  ];
  for (const dir of ["lib", "scripts/image"]) {
    for await (const path of walk(dir)) files.push(path);
  }
  const parts: Uint8Array<ArrayBuffer>[] = [];
  for (const file of files.sort()) {
    parts.push(new TextEncoder().encode(`\0${file}\0`), await Deno.readFile(`${ROOT}${file}`));
  }
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", await new Blob(parts).arrayBuffer()),
  );
  return Array.from(digest.subarray(0, 6), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(`${ROOT}${dir}`)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else if (entry.isFile) yield path;
  }
}

/** How to run a container. */
export interface ContainerOptions {
  /** Container TCP ports to publish on 127.0.0.1 (each gets a free host port). @default {[40007]} */
  publish?: number[];
  /** Container UDP ports to publish on 127.0.0.1. */
  publishUdp?: number[];
  /** Environment variables. */
  env?: Record<string, string>;
  /** The container's host name. */
  hostname?: string;
  /** Host folders mounted read-only, by the path they get in the container. */
  mounts?: Record<string, string>;
  /** Arguments after the image (echod serve flags). */
  args?: string[];
}

/** A running container of the image, its log read as {@linkcode Echod} reads a local one. */
export class Container {
  /** The container's name. */
  readonly name: string;
  /** Its log, records and exit, through the attached `docker run`. */
  readonly echod: Echod;
  /** Host TCP ports on 127.0.0.1 by container port. */
  readonly ports = new Map<number, number>();
  /** Host UDP ports on 127.0.0.1 by container port. */
  readonly udpPorts = new Map<number, number>();
  readonly #session: DockerSession;

  constructor(session: DockerSession, name: string, echod: Echod) {
    this.#session = session;
    this.name = name;
    this.echod = echod;
  }

  /** `docker inspect --format FORMAT` of the container. */
  async inspect(format: string): Promise<string> {
    return (await docker(this.#session.client, ["inspect", "--format", format, this.name])).trim();
  }

  /** `docker stop` (SIGTERM, then SIGKILL after `seconds`); resolves when it has exited. */
  async stop(seconds = 60): Promise<void> {
    await docker(this.#session.client, ["stop", "--time", String(seconds), this.name]);
    await this.echod.exited();
  }

  /** Removes the container, running or not. */
  async remove(): Promise<void> {
    await docker(this.#session.client, ["rm", "--force", this.name]).catch(() => "");
    await this.echod.exited();
  }
}

/**
 * Starts a container of `image` with a read-only root file system and
 * JSON logs (a flag after the image: container arguments are echod's), and
 * resolves once echod in it listens.
 */
export async function runContainer(
  session: DockerSession,
  image: string,
  options: ContainerOptions = {},
): Promise<Container> {
  const name = `echod-test-${crypto.randomUUID().slice(0, 8)}`;
  const publish = (options.publish ?? [40007]).map((port) => ({ port, protocol: "tcp" }));
  publish.push(...(options.publishUdp ?? []).map((port) => ({ port, protocol: "udp" })));
  const args = [
    "run",
    "--name",
    name,
    "--read-only",
    ...(options.hostname ? ["--hostname", options.hostname] : []),
    ...Object.entries(options.mounts ?? {}).flatMap((
      [target, source],
    ) => ["--volume", `${source}:${target}:ro`]),
    ...Object.entries(options.env ?? {}).flatMap((
      [key, value],
    ) => ["--env", `${key}=${value}`]),
    // An empty host port: the kernel picks a free one, as with port 0.
    ...publish.flatMap(({ port, protocol }) => ["--publish", `127.0.0.1::${port}/${protocol}`]),
    image,
    "--log-format",
    "json",
    ...(options.args ?? []),
  ];
  const child = new Deno.Command(session.client.program, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const container = new Container(session, name, new Echod(child));
  try {
    container.echod.ready = await Promise.race([
      container.echod.waitForMessage("listening on"),
      container.echod.exited().then(({ code }) => {
        throw new Error(
          `the container exited with ${code} before listening:\n${
            container.echod.otherLines.join("\n")
          }`,
        );
      }),
    ]);
    for (const { port, protocol } of publish) {
      const mapping = await docker(session.client, ["port", name, `${port}/${protocol}`]);
      const host = /^127\.0\.0\.1:(\d+)$/m.exec(mapping);
      if (!host) throw new Error(`${port}/${protocol} of ${name} is not on 127.0.0.1: ${mapping}`);
      (protocol === "tcp" ? container.ports : container.udpPorts).set(port, Number(host[1]));
    }
  } catch (error) {
    await container.remove();
    throw error;
  }
  return container;
}
