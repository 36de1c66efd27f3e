/**
 * Finding a Docker client that can build echod's image, and running it.
 *
 * An image for another architecture needs BuildKit (the legacy builder
 * ignores `--platform` for a `FROM scratch` image). Docker clients from 23
 * on build with BuildKit only through the buildx plugin; older ones (Debian
 * 12's docker.io) have it built in. When the first `docker` on PATH can do
 * neither, a later one that can is used: a standalone client placed before
 * the distribution's in PATH is a common set-up.
 *
 * @module
 */

import { ImageError, run } from "./context.ts";

/** A Docker client able to build with BuildKit. */
export interface Docker {
  /** The client's path. */
  program: string;
  /** Whether it builds through the buildx plugin (else with DOCKER_BUILDKIT=1). */
  buildx: boolean;
}

/** Every `docker` on PATH, in PATH order (`DOCKER` overrides the search). */
function dockerPrograms(): string[] {
  const chosen = Deno.env.get("DOCKER");
  if (chosen) return [chosen];
  const found: string[] = [];
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    try {
      const path = Deno.realPathSync(`${dir}/docker`);
      if (Deno.statSync(path).isFile && !found.includes(path)) found.push(path);
    } catch {
      // Not in this folder.
    }
  }
  return found;
}

/**
 * The first Docker client on PATH that can build with BuildKit, after
 * checking that dockerd answers it. Throws an {@linkcode ImageError} with
 * one line saying what to do when there is none or dockerd is not running.
 */
export async function findDocker(): Promise<Docker> {
  const client = await findClient();
  const answer = await daemonAnswer(client);
  if (answer !== undefined) {
    throw new ImageError(
      `dockerd is not running (${answer}): start it ` +
        "(sudo systemctl start docker, or sudo dockerd &) and try again",
    );
  }
  return client;
}

/** The first Docker client on PATH that can build with BuildKit (dockerd unchecked). */
export async function findClient(): Promise<Docker> {
  const programs = dockerPrograms();
  if (programs.length === 0) {
    throw new ImageError(
      "docker is not installed: install Docker (the docker.io package on Debian and Ubuntu)",
    );
  }
  for (const program of programs) {
    if (await succeeds(program, ["buildx", "version"])) return { program, buildx: true };
    const version = /version (\d+)\./.exec(await run(program, ["--version"]).catch(() => ""));
    if (version && Number(version[1]) < 23) return { program, buildx: false };
  }
  throw new ImageError(
    `${programs[0]} cannot build with BuildKit: install its buildx plugin (docker-buildx)`,
  );
}

/** Undefined when dockerd answers `client`; else why not (one line). */
export async function daemonAnswer(client: Docker): Promise<string | undefined> {
  try {
    await run(client.program, ["version", "--format", "{{.Server.Version}}"], {
      label: "docker version",
    });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Runs `docker args…` and returns its stdout; an {@linkcode ImageError} when it fails. */
export function docker(client: Docker, args: string[]): Promise<string> {
  return run(client.program, args, { label: `docker ${args[0]}` });
}

/** The command line (after the program) of a BuildKit build with this client. */
export function buildArgs(client: Docker, args: string[]): string[] {
  // --provenance=false: one plain manifest per architecture; the release
  // workflow attests the multi-architecture index itself.
  return client.buildx
    ? ["buildx", "build", "--load", "--provenance=false", ...args]
    : ["build", ...args];
}

/** The environment a build with this client needs. */
export function buildEnv(client: Docker): Record<string, string> {
  return client.buildx ? {} : { DOCKER_BUILDKIT: "1" };
}

async function succeeds(program: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(program, { args, stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}
