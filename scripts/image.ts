#!/usr/bin/env -S deno run --allow-run --allow-read --allow-write --allow-env
/**
 * Builds echod's container image for linux/amd64 or linux/arm64, offline
 * from registries: no base image is pulled (`FROM scratch`, see
 * deploy/docker/Dockerfile); the build context is assembled here from
 * Debian packages, the Deno runtime's npm package and echod's sources.
 *
 * ```sh
 * deno task image                              # this machine's architecture, tagged echod:dev
 * deno task image --platform linux/arm64       # another architecture (no emulation needed)
 * deno task image --tag ghcr.io/OWNER/echod:1.2.3
 * ```
 *
 * Needs Docker with BuildKit (dockerd running), apt-get and dpkg-deb,
 * npm and tar. Prints the image's tag, platform and size.
 *
 * @module
 */

import { parseArgs } from "node:util";
import meta from "../deno.json" with { type: "json" };
import { UsageError } from "../lib/errors.ts";
import {
  assembleContext,
  hostPlatform,
  ImageError,
  type Platform,
  platformOf,
  ROOT,
  run,
} from "./image/context.ts";
import { buildArgs, buildEnv, docker, findDocker } from "./image/docker.ts";

/** The tag an image gets when none is asked for. */
export const DEFAULT_TAG = "echod:dev";

/** What {@linkcode buildImage} built. */
export interface BuiltImage {
  /** Its tag. */
  tag: string;
  /** Its platform, e.g. linux/arm64. */
  platform: string;
  /** Its size in bytes, as `docker image inspect` reports it. */
  size: number;
}

/** Options for {@linkcode buildImage}. */
export interface BuildOptions {
  /** The tag. @default {DEFAULT_TAG} */
  tag?: string;
  /** Where to assemble the build context. @default {"dist/image/<arch>"} */
  context?: string;
  /** Keep docker build's progress off the terminal (for tests). @default {false} */
  quiet?: boolean;
}

/**
 * Assembles the context for `platform` and builds the image. Throws an
 * {@linkcode ImageError} (one line) when a tool is missing or refuses.
 */
export async function buildImage(
  platform: Platform,
  options: BuildOptions = {},
): Promise<BuiltImage> {
  const client = await findDocker();
  const tag = options.tag ?? DEFAULT_TAG;
  const context = options.context ?? `${ROOT}dist/image/${platform.debian}`;
  await assembleContext(platform, context);
  const labels = {
    VERSION: meta.version,
    REVISION: await run("git", ["rev-parse", "HEAD"], { cwd: ROOT })
      .then((out) => out.trim(), () => "unknown"),
    SOURCE: `${Deno.env.get("GITHUB_SERVER_URL") ?? "https://github.com"}/${
      Deno.env.get("GITHUB_REPOSITORY") ?? "echod/echod"
    }`,
    // deno.json declares no licence today; NOASSERTION is SPDX for "not stated".
    LICENSES: (meta as { license?: string }).license ?? "NOASSERTION",
  };
  const args = buildArgs(client, [
    "--platform",
    platform.name,
    "--file",
    `${ROOT}deploy/docker/Dockerfile`,
    ...Object.entries(labels).flatMap(([name, value]) => ["--build-arg", `${name}=${value}`]),
    "--tag",
    tag,
    ...(options.quiet ? ["--quiet"] : []),
    context,
  ]);
  if (options.quiet) {
    await run(client.program, args, { env: buildEnv(client), label: `docker build of ${tag}` });
  } else {
    const status = await new Deno.Command(client.program, {
      args,
      env: buildEnv(client),
      stdin: "null",
    }).spawn().status;
    if (!status.success) {
      throw new ImageError(`docker build of ${tag} failed (its output is above)`);
    }
  }
  const size = Number(await docker(client, ["image", "inspect", "--format", "{{.Size}}", tag]));
  return { tag, platform: platform.name, size };
}

const USAGE = "usage: deno task image [--platform linux/amd64|linux/arm64] [--tag NAME]";

if (import.meta.main) {
  try {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        platform: { type: "string" },
        tag: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(`${USAGE}\n(default: this machine's architecture, tag ${DEFAULT_TAG})`);
      Deno.exit(0);
    }
    const platform = values.platform === undefined ? hostPlatform() : platformOf(values.platform);
    const built = await buildImage(platform, { tag: values.tag });
    console.log(
      `image: ${built.tag} (${built.platform}), ${(built.size / 1e6).toFixed(1)} MB`,
    );
  } catch (error) {
    // node:util's parseArgs throws a TypeError with an ERR_PARSE_ARGS_* code.
    const parse = error instanceof TypeError && "code" in error &&
      String(error.code).startsWith("ERR_PARSE_ARGS");
    if (parse) {
      console.error(`image: ${error.message} (${USAGE})`);
      Deno.exit(2);
    }
    if (!(error instanceof UsageError || error instanceof ImageError)) throw error;
    console.error(`image: ${error.message}`);
    Deno.exit(error instanceof UsageError ? 2 : 1);
  }
}
