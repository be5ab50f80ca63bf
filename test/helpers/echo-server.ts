// Plain TCP servers for tunnel tests: an echo server (half-close aware: it ends its write side only after
// the client ended, having echoed everything) and a scripted server for other shapes. Listens on a random
// loopback port; dispose it to close it and every connection it accepted.
import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';

export interface TestTcpServer extends AsyncDisposable {
  readonly ip: string;
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

/** A TCP server on host:0 (allowHalfOpen) that hands each connection to onSocket. */
export async function startTcpServer(onSocket: (socket: Socket) => void, host = '127.0.0.1'): Promise<TestTcpServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => {}); // resets are part of several tests
    socket.once('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  server.listen(0, host);
  await once(server, 'listening');
  const { address, port } = server.address() as AddressInfo;
  const close = async (): Promise<void> => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    await closed;
  };
  return {
    ip: address,
    port,
    get accepted() {
      return accepted;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Echoes every byte back; ends its write side after the client's FIN once all was echoed. */
export function startEchoServer(host = '127.0.0.1'): Promise<TestTcpServer> {
  return startTcpServer((socket) => socket.pipe(socket), host);
}
