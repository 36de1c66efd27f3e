/**
 * Peer for the benchmark suite: the smallest Deno echo loop (read into one
 * 4 KiB buffer, write it back), with no limits, deadlines or counters. It is
 * the floor any Deno server sits on: what echod costs beyond the runtime
 * is the distance to it. Usage: deno run --allow-net benchmarks/peers/deno_loop.ts [BUFFER] PORT
 *
 * @module
 */

// The port comes last (the bench appends it); an optional buffer size before it.
const port = Number(Deno.args[Deno.args.length - 1]);
const size = Deno.args.length > 1 ? Number(Deno.args[0]) : 4096;
const listener = Deno.listen({ hostname: "::", port });
for await (const conn of listener) echo(conn);

async function echo(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(size);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      for (let sent = 0; sent < n;) sent += await conn.write(buf.subarray(sent, n));
    }
  } catch {
    // Reset by the peer.
  } finally {
    try {
      conn.close();
    } catch {
      // Closed already.
    }
  }
}
