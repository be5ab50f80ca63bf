// SOCKS5 outbound entry (RFC 1928; docs/architecture.md "Processes and ports" port 15080): no-auth, CONNECT only, IPv4/IPv6/domain
// targets. Hostile input is parsed by pure functions over the bytes received so far (a complete greeting is
// at most 257 bytes, a request 262), so nothing grows without bound; garbage closes that client only. The
// success reply is sent only after onConnect produced an upstream; then the client is spliced to it.
import { lookup } from 'node:dns/promises';
import { once } from 'node:events';
import { type AddressInfo, createServer, isIP, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ProxyError } from '../errors.ts';
import { type IpPort, unmapIpv4 } from '../mesh/ip-addr.ts';
import { ConnectionLimiter, DEFAULT_CONNECTION_LIMITS, guardConnection } from '../runtime/connection-limiter.ts';
import { type SpliceResult, splice } from './splice.ts';

const VERSION = 0x05;
const METHOD_NO_AUTH = 0x00;
const METHOD_NONE_ACCEPTABLE = 0xff;
const CMD_CONNECT = 0x01;
const ATYP_IPV4 = 0x01;
const ATYP_DOMAIN = 0x03;
const ATYP_IPV6 = 0x04;

/** RFC 1928 §6 reply codes. */
export const SOCKS5_REP = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

export type ParseStep<T> =
  | { readonly kind: 'incomplete' }
  /** rep: the reply to send before closing; null: close without a reply (not SOCKS5 at all). */
  | { readonly kind: 'error'; readonly reason: string; readonly rep: number | null }
  | { readonly kind: 'ok'; readonly value: T; readonly consumed: number };

export interface Socks5Greeting {
  readonly methods: readonly number[];
}

export type Socks5Target =
  | { readonly kind: 'ip'; readonly ip: string }
  | { readonly kind: 'domain'; readonly host: string };

export interface Socks5Request {
  readonly target: Socks5Target;
  readonly port: number;
}

const INCOMPLETE = { kind: 'incomplete' } as const;

/** VER NMETHODS METHODS… (RFC 1928 §3). */
export function parseSocks5Greeting(buf: Uint8Array): ParseStep<Socks5Greeting> {
  if (buf.length < 1) return INCOMPLETE;
  if (buf[0] !== VERSION) return { kind: 'error', reason: `not SOCKS5 (version byte ${buf[0]})`, rep: null };
  if (buf.length < 2) return INCOMPLETE;
  const n = buf[1] ?? 0;
  if (n === 0) return { kind: 'error', reason: 'greeting offers no methods', rep: null };
  if (buf.length < 2 + n) return INCOMPLETE;
  return { kind: 'ok', value: { methods: [...buf.subarray(2, 2 + n)] }, consumed: 2 + n };
}

/** VER CMD RSV ATYP DST.ADDR DST.PORT (RFC 1928 §4). RSV is ignored, as most servers do. */
export function parseSocks5Request(buf: Uint8Array): ParseStep<Socks5Request> {
  if (buf.length < 1) return INCOMPLETE;
  if (buf[0] !== VERSION) return { kind: 'error', reason: `bad request version ${buf[0]}`, rep: null };
  if (buf.length < 4) return INCOMPLETE;
  if (buf[1] !== CMD_CONNECT) {
    return { kind: 'error', reason: `command ${buf[1]} not supported`, rep: SOCKS5_REP.commandNotSupported };
  }
  const atyp = buf[3];
  let target: Socks5Target;
  let end: number;
  switch (atyp) {
    case ATYP_IPV4:
      end = 4 + 4;
      if (buf.length < end + 2) return INCOMPLETE;
      target = { kind: 'ip', ip: [...buf.subarray(4, end)].join('.') };
      break;
    case ATYP_IPV6:
      end = 4 + 16;
      if (buf.length < end + 2) return INCOMPLETE;
      target = { kind: 'ip', ip: formatIpv6(buf.subarray(4, end)) };
      break;
    case ATYP_DOMAIN: {
      if (buf.length < 5) return INCOMPLETE;
      const len = buf[4] ?? 0;
      if (len === 0) return { kind: 'error', reason: 'empty domain name', rep: SOCKS5_REP.generalFailure };
      end = 5 + len;
      if (buf.length < end + 2) return INCOMPLETE;
      const host = Buffer.from(buf.buffer, buf.byteOffset + 5, len).toString('latin1');
      // A domain must be a hostname; an IP literal here would dodge name resolution, so take it as an IP.
      if (isIP(host) !== 0) target = { kind: 'ip', ip: host };
      else if (/^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$/.test(host)) target = { kind: 'domain', host };
      else return { kind: 'error', reason: 'malformed domain name', rep: SOCKS5_REP.hostUnreachable };
      break;
    }
    default:
      return { kind: 'error', reason: `address type ${atyp} not supported`, rep: SOCKS5_REP.addressTypeNotSupported };
  }
  const port = ((buf[end] ?? 0) << 8) | (buf[end + 1] ?? 0);
  if (port === 0) return { kind: 'error', reason: 'port 0', rep: SOCKS5_REP.generalFailure };
  return { kind: 'ok', value: { target, port }, consumed: end + 2 };
}

function formatIpv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((b[i] ?? 0) << 8) | (b[i + 1] ?? 0)).toString(16));
  // Round-trip through URL to get the canonical compressed form (::).
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** The SOCKS5 reply code for a failed outbound attempt. */
export function socks5RepForError(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return SOCKS5_REP.connectionRefused;
    case 'ENETUNREACH':
      return SOCKS5_REP.networkUnreachable;
    case 'EHOSTUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ETIMEDOUT':
    case 'FERRY_UNKNOWN_TARGET':
    case 'FERRY_NO_HEALTHY_UPSTREAM':
      return SOCKS5_REP.hostUnreachable;
    case 'FERRY_AUTHZ_DENIED':
    case 'FERRY_AUTHZ_NOT_ALLOWED':
    case 'FERRY_SELF_CALL':
      return SOCKS5_REP.notAllowed;
    default:
      return SOCKS5_REP.generalFailure;
  }
}

export interface Socks5ConnectRequest {
  readonly clientSocket: Socket;
  /** The client's source address: it selects the source workload. */
  readonly srcIp: string;
  readonly dst: IpPort;
  /** The hostname the client asked for, when it sent a domain. */
  readonly hostname: string | undefined;
  /** Aborted when the client goes away while the upstream is being set up. */
  readonly signal: AbortSignal;
}

export type Socks5ConnectResult =
  | { readonly ok: true; readonly upstream: Duplex }
  | { readonly ok: false; readonly rep: number };

export interface Socks5ServerOptions {
  readonly host: string;
  readonly port: number;
  readonly onConnect: (req: Socks5ConnectRequest) => Promise<Socks5ConnectResult>;
  /** A client that never completes the handshake is dropped after this long. */
  readonly handshakeTimeoutMs?: number;
  /** Concurrent client caps (default 1024 per source, 1024 in all: DEFAULT_CONNECTION_LIMITS.socks5). */
  readonly limiter?: ConnectionLimiter;
  /** Name resolution for domain targets (default: dns.lookup). */
  readonly resolve?: (host: string) => Promise<string>;
  /** A client was refused or sent garbage (for logs). */
  readonly onClientError?: (error: ProxyError, srcIp: string) => void;
  /** A spliced connection finished (for access logs). */
  readonly onClosed?: (req: Socks5ConnectRequest, result: SpliceResult) => void;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

type Phase = 'greeting' | 'request' | 'connecting' | 'spliced' | 'closed';

export class Socks5Server {
  readonly #server: Server;
  readonly #clients = new Set<Socket>();
  readonly #opts: Socks5ServerOptions;
  readonly #limiter: ConnectionLimiter;

  private constructor(opts: Socks5ServerOptions) {
    this.#opts = opts;
    this.#limiter = opts.limiter ?? new ConnectionLimiter(DEFAULT_CONNECTION_LIMITS.socks5);
    this.#server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      if (guardConnection(socket, this.#limiter)) this.#onClient(socket);
    });
    this.#server.on('error', onIgnoredError);
  }

  static async listen(opts: Socks5ServerOptions): Promise<Socks5Server> {
    const s = new Socks5Server(opts);
    s.#server.listen({ host: opts.host, port: opts.port });
    await Promise.race([once(s.#server, 'listening'), once(s.#server, 'error').then(([err]) => Promise.reject(err))]);
    return s;
  }

  get address(): IpPort {
    const a = this.#server.address() as AddressInfo;
    return { ip: a.address, port: a.port };
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  /** Stops accepting and destroys every client connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const c of this.#clients) c.destroy();
    await closed;
  }

  #onClient(socket: Socket): void {
    socket.on('error', onIgnoredError); // resets end the client; 'close' cleans up
    this.#clients.add(socket);
    socket.once('close', () => this.#clients.delete(socket));
    new Socks5Client(socket, this.#opts).start();
  }
}

/** One client's handshake: greeting → request → connecting → spliced (or closed at any point). */
class Socks5Client {
  readonly #socket: Socket;
  readonly #opts: Socks5ServerOptions;
  readonly #srcIp: string;
  readonly #abort = new AbortController();
  #phase: Phase = 'greeting';
  #pending: Buffer = Buffer.alloc(0);
  #timer: NodeJS.Timeout | null = null;

  constructor(socket: Socket, opts: Socks5ServerOptions) {
    this.#socket = socket;
    this.#opts = opts;
    this.#srcIp = unmapIpv4(socket.remoteAddress ?? '');
  }

  start(): void {
    this.#timer = setTimeout(onHandshakeTimeout, this.#opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, this);
    this.#timer.unref();
    this.#socket.on('data', this.#onData);
    this.#socket.once('end', this.#onEarlyEnd);
    this.#socket.once('close', () => {
      this.#clearTimer();
      if (this.#phase !== 'spliced') this.#phase = 'closed';
      this.#abort.abort(new ProxyError('FERRY_SOCKS5_BAD_REQUEST', 'client went away'));
    });
  }

  fail(reason: string, rep: number | null): void {
    if (this.#phase === 'closed' || this.#phase === 'spliced') return;
    this.#opts.onClientError?.(new ProxyError('FERRY_SOCKS5_BAD_REQUEST', reason), this.#srcIp);
    this.#refuse(rep === null ? null : reply(rep));
  }

  /** Handshake deadline: an unfinished handshake, or a refused client that never closed, is destroyed. */
  expire(): void {
    if (this.#phase === 'closed') this.#socket.destroy();
    else this.fail('handshake timed out', null);
  }

  #refuse(answer: Buffer | null): void {
    this.#phase = 'closed';
    this.#socket.off('data', this.#onData);
    if (answer === null) {
      this.#clearTimer();
      this.#socket.destroy();
      return;
    }
    // Answer, then discard whatever else arrives until the client closes (or the deadline destroys it):
    // destroying with unread input would RST and could lose the answer.
    this.#socket.resume();
    this.#socket.end(answer);
    this.#clearTimer();
    this.#timer = setTimeout(onHandshakeTimeout, this.#opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, this);
    this.#timer.unref();
  }

  readonly #onEarlyEnd = (): void => {
    if (this.#phase === 'greeting' || this.#phase === 'request') this.fail('client closed during handshake', null);
  };

  readonly #onData = (chunk: Buffer): void => {
    // Handshake only (a few hundred bytes): after the request the listener is removed and pipe() takes over.
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    if (this.#phase === 'greeting') {
      const g = parseSocks5Greeting(this.#pending);
      if (g.kind === 'incomplete') return;
      if (g.kind === 'error') {
        this.fail(g.reason, g.rep);
        return;
      }
      if (!g.value.methods.includes(METHOD_NO_AUTH)) {
        this.#opts.onClientError?.(
          new ProxyError('FERRY_SOCKS5_BAD_REQUEST', 'no acceptable auth method'),
          this.#srcIp,
        );
        this.#refuse(Buffer.from([VERSION, METHOD_NONE_ACCEPTABLE]));
        return;
      }
      this.#socket.write(Buffer.from([VERSION, METHOD_NO_AUTH]));
      this.#pending = this.#pending.subarray(g.consumed);
      this.#phase = 'request';
    }
    if (this.#phase !== 'request') return;
    const r = parseSocks5Request(this.#pending);
    if (r.kind === 'incomplete') return;
    if (r.kind === 'error') {
      this.fail(r.reason, r.rep);
      return;
    }
    this.#phase = 'connecting';
    this.#socket.off('data', this.#onData);
    this.#socket.pause();
    const early = this.#pending.subarray(r.consumed);
    this.#pending = Buffer.alloc(0);
    void this.#connect(r.value, early);
  };

  async #connect(req: Socks5Request, early: Buffer): Promise<void> {
    this.#clearTimer();
    const hostname = req.target.kind === 'domain' ? req.target.host : undefined;
    let ip: string;
    try {
      ip = req.target.kind === 'ip' ? req.target.ip : await (this.#opts.resolve ?? resolveHost)(req.target.host);
    } catch (err) {
      return this.fail(`cannot resolve ${hostname}: ${String(err)}`, SOCKS5_REP.hostUnreachable);
    }
    const request: Socks5ConnectRequest = {
      clientSocket: this.#socket,
      srcIp: this.#srcIp,
      dst: { ip: unmapIpv4(ip), port: req.port },
      hostname,
      signal: this.#abort.signal,
    };
    let result: Socks5ConnectResult;
    try {
      result = await this.#opts.onConnect(request);
    } catch (err) {
      result = { ok: false, rep: socks5RepForError(err) };
    }
    if (!result.ok) return this.fail(`upstream refused (rep ${result.rep})`, result.rep);
    if (this.#phase !== 'connecting') {
      result.upstream.destroy(); // the client left while we connected
      return;
    }
    this.#phase = 'spliced';
    this.#socket.off('end', this.#onEarlyEnd);
    this.#socket.write(reply(SOCKS5_REP.succeeded));
    if (early.length > 0) this.#socket.unshift(early);
    const done = await splice(this.#socket, result.upstream);
    this.#opts.onClosed?.(request, done);
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

function onHandshakeTimeout(client: Socks5Client): void {
  client.expire();
}

// BND.ADDR/BND.PORT are 0.0.0.0:0: the bound address of the upstream leg is not meaningful through a mesh.
function reply(rep: number): Buffer {
  return Buffer.from([VERSION, rep, 0x00, ATYP_IPV4, 0, 0, 0, 0, 0, 0]);
}

async function resolveHost(host: string): Promise<string> {
  return (await lookup(host)).address;
}

function onIgnoredError(): void {}
