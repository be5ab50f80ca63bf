// A SOCKS5 CONNECT client for process tests: half-open capable (the client may keep writing after the
// server ended its side), and a refusal is a value carrying the REP code and how the proxy then closed the
// connection, so tests can assert both.
import net from 'node:net';

export type Socks5Outcome =
  | { readonly ok: true; readonly socket: net.Socket }
  | {
      readonly ok: false;
      /** RFC 1928 reply code; null when the proxy closed without a reply. */
      readonly rep: number | null;
      /** Resolves once the proxy closed the client connection. */
      readonly closed: Promise<void>;
    };

export interface Socks5ConnectOptions {
  readonly proxy: { readonly host: string; readonly port: number };
  readonly target: { readonly host: string; readonly port: number };
  /** Source address: selects the source workload at the ztunnel. */
  readonly localAddress: string;
}

/** SOCKS5 greeting (no auth) + CONNECT to an IPv4 target; resolves once the reply arrived. */
export function socks5Connect(opts: Socks5ConnectOptions): Promise<Socks5Outcome> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: opts.proxy.host,
      port: opts.proxy.port,
      localAddress: opts.localAddress,
      allowHalfOpen: true,
      noDelay: true,
    });
    let buf = Buffer.alloc(0);
    let phase: 'greeting' | 'reply' = 'greeting';
    const refused = (rep: number | null): void => {
      cleanup();
      // Closed = the proxy sent FIN (we answer with ours) or the socket is gone.
      const closed = new Promise<void>((r) => {
        if (socket.closed) r();
        socket.once('end', () => {
          socket.end();
          r();
        });
        socket.once('close', () => r());
      });
      socket.on('error', () => {});
      socket.resume(); // drain whatever follows so 'close' can fire
      resolve({ ok: false, rep, closed });
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => refused(phase === 'reply' && buf.length >= 2 ? (buf[1] ?? null) : null);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      if (phase === 'greeting') {
        if (buf.length < 2) return;
        if (buf[0] !== 5 || buf[1] !== 0) {
          refused(null);
          return;
        }
        buf = buf.subarray(2);
        phase = 'reply';
        const octets = opts.target.host.split('.').map(Number);
        socket.write(Buffer.from([5, 1, 0, 1, ...octets, opts.target.port >> 8, opts.target.port & 0xff]));
      }
      if (buf.length < 10) return;
      if (buf[1] !== 0) {
        refused(buf[1] ?? null);
        return;
      }
      cleanup();
      socket.pause();
      const rest = buf.subarray(10);
      if (rest.length > 0) socket.unshift(rest);
      resolve({ ok: true, socket });
    };
    const cleanup = (): void => {
      socket.off('data', onData).off('error', onError).off('close', onClose);
    };
    socket.on('data', onData).on('error', onError).on('close', onClose);
    socket.once('connect', () => socket.write(Buffer.from([5, 1, 0])));
  });
}

/** socks5Connect that must succeed. */
export async function socks5Dial(opts: Socks5ConnectOptions): Promise<net.Socket> {
  const out = await socks5Connect(opts);
  if (!out.ok) throw new Error(`SOCKS5 CONNECT to ${opts.target.host}:${opts.target.port} refused, REP ${out.rep}`);
  return out.socket;
}
