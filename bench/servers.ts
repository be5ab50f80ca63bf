// Benchmark backends: an echo server (request/response latency) and a sink (single-stream throughput:
// reads to EOF, then answers with the byte count). Run as a child process: prints "listening <port>".
import net from 'node:net';

const [mode = 'echo', host = '127.0.0.1', portText = '0'] = process.argv.slice(2);

function onEchoConnection(socket: net.Socket): void {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
}

function onSinkConnection(socket: net.Socket): void {
  let bytes = 0;
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  socket.on('end', () => socket.end(`${bytes}\n`));
}

const server = net.createServer({ allowHalfOpen: true }, mode === 'sink' ? onSinkConnection : onEchoConnection);
server.listen(Number(portText), host, () => {
  const addr = server.address() as net.AddressInfo;
  process.stdout.write(`listening ${addr.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
