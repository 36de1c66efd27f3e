// Peer for the benchmark suite: the Node.js one-liner echo server.
// Usage: node benchmarks/peers/node_pipe.mjs PORT
import net from "node:net";

const port = Number(process.argv[2]);
net.createServer((socket) => {
  socket.on("error", () => {});
  socket.pipe(socket);
}).listen(port, "::");
