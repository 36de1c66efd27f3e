/** startSweep(), in-process: which connections it expires, and why. */

import assert from "node:assert/strict";
import { type Expirable, type ExpiryReason, startSweep } from "../lib/serve/sweep.ts";

interface Item extends Expirable {
  name: string;
  bytesIn: number;
  bytesOut: number;
}

function item(name: string, extra: Partial<Item> = {}): Item {
  const now = performance.now();
  return { name, bytesIn: 0, bytesOut: 0, openedAt: now, seenBytes: 0, quietSince: now, ...extra };
}

Deno.test("startSweep() expires the idle, the old and the slow handshakes, each once, and spares the busy", async () => {
  const now = performance.now();
  const items = new Set<Item>([
    item("idle"),
    item("busy"),
    item("old", { openedAt: now - 10_000 }),
    item("handshake", { handshakeBy: now + 50 }),
  ]);
  const expired: [string, ExpiryReason][] = [];
  let busy: ReturnType<typeof setInterval> | undefined;
  const done = new Promise<void>((resolve) => {
    const sweep = startSweep(items, {
      idleTimeout: 200,
      maxLifetime: 5_000,
      handshakeTimeout: 50,
      onExpire(it, reason) {
        expired.push([it.name, reason]);
        items.delete(it);
        if (expired.length === 3) {
          sweep.stop();
          resolve();
        }
      },
    });
    // The busy one moves a byte every 20 ms.
    const b = [...items].find((i) => i.name === "busy")!;
    busy = setInterval(() => b.bytesIn++, 20);
  });
  await done;
  clearInterval(busy);
  assert.deepEqual(
    expired.sort(),
    [["handshake", "tls-handshake"], ["idle", "idle-timeout"], ["old", "max-lifetime"]],
  );
  assert.ok([...items].some((i) => i.name === "busy"));
});
