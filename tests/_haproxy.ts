/**
 * A real HAProxy in front of echod backends, for the PROXY protocol tests:
 * round robin over `backends`, each sent a PROXY header of the kind asked for.
 *
 * @module
 */

import { connect } from "./_client.ts";
import { has } from "./_programs.ts";
import { poll } from "./_poll.ts";

/** Whether HAProxy is installed (Debian's package, installed by .ci/run). */
export const HAS_HAPROXY: boolean = has("haproxy");

/** A running HAProxy. */
export interface Haproxy {
  /** The frontend port, on 127.0.0.1 and ::1. */
  port: number;
  /** Stops HAProxy and removes its configuration. */
  stop(): Promise<void>;
}

/**
 * Starts HAProxy with one frontend and the backends on 127.0.0.1, and
 * resolves once its frontend accepts. `bind` is the frontend's bind line
 * after the port (e.g. `v4v6` on `:::PORT`); by default 127.0.0.1 and ::1.
 */
export async function startHaproxy(
  backends: number[],
  options: { sendProxy: "send-proxy" | "send-proxy-v2"; v4v6?: boolean },
): Promise<Haproxy> {
  const dir = await Deno.makeTempDir();
  const port = 20_000 + Math.floor(Math.random() * 12_000);
  const binds = options.v4v6
    ? [`  bind :::${port} v4v6`]
    : [`  bind 127.0.0.1:${port}`, `  bind [::1]:${port}`];
  await Deno.writeTextFile(
    `${dir}/haproxy.cfg`,
    [
      "defaults",
      "  mode tcp",
      "  timeout connect 5s",
      "  timeout client 30s",
      "  timeout server 30s",
      "frontend echo",
      ...binds,
      "  default_backend echods",
      "backend echods",
      "  balance roundrobin",
      ...backends.map((p, i) => `  server b${i} 127.0.0.1:${p} ${options.sendProxy}`),
      "",
    ].join("\n"),
  );
  const child = new Deno.Command("haproxy", {
    args: ["-db", "-f", `${dir}/haproxy.cfg`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  async function stop(): Promise<void> {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
  // Ready when its frontend accepts (HAProxy prints nothing on start).
  try {
    await poll(async () => (await connect("127.0.0.1", port)).close() ?? true, {
      what: `HAProxy to open port ${port}`,
      timeoutMs: 5_000,
      intervalMs: 25,
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, stop };
}
