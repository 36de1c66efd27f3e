// Fault-test client: opens COUNT connections to HOST:PORT, CONCURRENCY at a
// time; each sends SIZE bytes and is then reset (RST, as SO_LINGER 0 does)
// without waiting for the echo. Prints "done N" when all are reset.
import net from "node:net";

const [host, port, count, concurrency, size] = process.argv.slice(2);
const total = Number(count);
const payload = Buffer.alloc(Number(size), 0x5a);
let started = 0;
let finished = 0;

function next() {
  if (started >= total) return;
  started++;
  const socket = net.connect({ host, port: Number(port) }, () => {
    socket.write(payload, () => socket.resetAndDestroy());
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    finished++;
    if (finished === total) console.log(`done ${finished}`);
    else next();
  });
}

for (let i = 0; i < Number(concurrency); i++) next();
