/**
 * Peer for the benchmark suite: the shortest Deno echo server, with Web
 * Streams (`readable.pipeTo(writable)`), as the baseline echod's own loop
 * replaced. Usage: deno run --allow-net benchmarks/peers/deno_pipeto.ts PORT
 *
 * @module
 */

const listener = Deno.listen({ hostname: "::", port: Number(Deno.args[0]) });
for await (const conn of listener) {
  conn.readable.pipeTo(conn.writable).catch(() => {});
}
