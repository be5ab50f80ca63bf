// `ferry testapp tcp-echo`: echoes every byte back; half-close aware (the reply side ends after the client's
// FIN once everything was echoed). Stands in for TCP echo images in the local cluster.
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';

export interface RunningTcpEcho extends AsyncDisposable {
  readonly server: Server;
  readonly port: number;
}

export async function startTcpEcho(opts: {
  readonly port: number;
  readonly host?: string;
  readonly log?: (line: Record<string, unknown>) => void;
}): Promise<RunningTcpEcho> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    socket.on('error', () => undefined); // resets from clients are normal here
    socket.on('close', () => {
      sockets.delete(socket);
      opts.log?.({ msg: 'connection', peer, bytes });
    });
    socket.pipe(socket); // pipe() ends the writable side on the readable's end
  });
  server.listen(opts.port, opts.host ?? '0.0.0.0');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
}
