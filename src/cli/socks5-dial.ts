// Minimal SOCKS5 CONNECT dialer for benchmarks and tests: no auth, IPv4 target. Resolves with the socket
// once the proxy answered success; rejects with the REP code otherwise.
import net from 'node:net';

export interface Socks5DialOptions {
  readonly proxy: { host: string; port: number };
  readonly target: { host: string; port: number };
  /** Source address to dial the proxy from: selects the source workload. */
  readonly localAddress?: string;
}

export function dialViaSocks5(opts: Socks5DialOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: opts.proxy.host, port: opts.proxy.port, localAddress: opts.localAddress });
    socket.setNoDelay(true);
    let phase: 'greeting' | 'reply' = 'greeting';
    let buf = Buffer.alloc(0);
    const fail = (err: Error): void => {
      socket.destroy();
      reject(err);
    };
    socket.on('error', fail);
    socket.on('connect', () => {
      socket.write(Buffer.from([5, 1, 0]));
    });
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      if (phase === 'greeting') {
        if (buf.length < 2) return;
        if (buf[0] !== 5 || buf[1] !== 0) {
          fail(new Error(`socks5: method refused (${buf[1]})`));
          return;
        }
        buf = buf.subarray(2);
        phase = 'reply';
        const octets = opts.target.host.split('.').map(Number);
        const req = Buffer.from([5, 1, 0, 1, ...octets, opts.target.port >> 8, opts.target.port & 0xff]);
        socket.write(req);
      }
      if (phase === 'reply') {
        if (buf.length < 10) return;
        const rep = buf[1];
        if (rep !== 0) {
          fail(Object.assign(new Error(`socks5: connect failed, REP ${rep}`), { rep }));
          return;
        }
        // Back to paused mode before our listener goes, or bytes arriving now would be dropped.
        socket.pause();
        socket.off('data', onData);
        socket.off('error', fail);
        const rest = buf.subarray(10);
        if (rest.length > 0) socket.unshift(rest);
        resolve(socket);
      }
    };
    socket.on('data', onData);
  });
}
