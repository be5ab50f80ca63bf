// HBONE inbound server (docs/architecture.md "HBONE (wire contract)", docs/architecture.md "How a connection flows through the code", "HBONE (wire contract)"): TLS 1.3 with a required
// client certificate of our trust domain, HTTP/2, one CONNECT stream per tunnel. This module validates the
// request's shape and hands it to onConnect; it never answers 200 by itself: only tunnel.accept() does,
// which the caller invokes after authorization and the upstream connect succeeded. Hostile TLS or HTTP/2
// input ends that connection only; every emitter here has an 'error' listener. A plain TCP listener accepts
// and admits each connection (per-source and total caps, src/runtime/connection-limiter.ts) before the TLS
// server sees a byte of it; the TLS handshake must finish within handshakeTimeoutMs (10 s).
import { once } from 'node:events';
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2Session,
  constants as h2constants,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { type AddressInfo, createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { ProxyError } from '../errors.ts';
import type { SpiffeId } from '../identity/spiffe-id.ts';
import {
  buildTlsContexts,
  hboneServerTlsOptions,
  verifyClientTrustDomain,
  verifyErrorCode,
} from '../identity/tls-context.ts';
import { classifyTlsErrorCode, describeTlsRefusal, TlsRefusedError } from '../identity/tls-refusal.ts';
import type { WorkloadCertificate } from '../identity/workload-certificate.ts';
import { unmapIpv4 } from '../mesh/ip-addr.ts';
import {
  ConnectionLimiter,
  DEFAULT_CONNECTION_LIMITS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  guardConnection,
} from '../runtime/connection-limiter.ts';
import type { Logger } from '../runtime/logger.ts';
import { formatAuthority, parseHboneAuthority } from './authority.ts';
import { type HboneReceivedHeaders, readConnectHeaders } from './headers.ts';
import { DEFAULT_KEEPALIVE, type KeepaliveOptions, startKeepalive } from './keepalive.ts';
import { hardenTunnelStream } from './tunnel-stream.ts';

const MiB = 1024 * 1024;
// HTTP/2 settings of Istio's inbound (docs/architecture.md "HBONE (wire contract)").
export const HBONE_SERVER_SETTINGS = {
  initialWindowSize: 4 * MiB,
  maxFrameSize: 1 * MiB,
  maxConcurrentStreams: 200,
  maxHeaderListSize: 64 * 1024,
  enablePush: false,
} as const;
export const HBONE_CONNECTION_WINDOW_BYTES = 16 * MiB;
// nghttp2 memory per session, in MB. Full stream windows of many tunnels need more than Node's 10 MB default.
const MAX_SESSION_MEMORY_MB = 256;
const DEFAULT_DRAIN_DEADLINE_MS = 5_000;

export type HboneRejectStatus = 400 | 401 | 503;

export interface HboneConnectRequest {
  /** The raw `:authority`, already checked by parseHboneAuthority (ip:port or [ipv6]:port). */
  readonly authority: string;
  readonly headers: HboneReceivedHeaders;
  /** The local address the client dialed (the pod IP in Ferry's in-pod model). */
  readonly dialedIp: string;
  readonly dialedPort: number;
  readonly peer: { readonly ip: string; readonly port: number };
  /** The client's SPIFFE ID from its verified certificate (same trust domain as ours). */
  readonly peerIdentity: SpiffeId;
}

export interface HboneTunnel {
  /** Sends `:status 200` and returns the stream as the tunnel's byte stream. Call once, after policy passed. */
  accept(): Duplex;
  /** Answers the CONNECT with an error status and ends the stream. */
  reject(status: HboneRejectStatus): void;
  /** Aborted when the stream goes away before a response was sent (the client gave up). */
  readonly signal: AbortSignal;
}

/**
 * Something went wrong with one peer; the server keeps serving. For logs (`log_early_deny`). A refused
 * handshake's error is a TlsRefusedError naming the reason (expired, unknown-ca, wrong-trust-domain, …).
 */
export interface HboneServerEvent {
  readonly error: ProxyError;
  readonly peer: { readonly ip: string | undefined; readonly port: number | undefined };
}

/** Log fields of a peer error: code, reason (for TLS refusals), the peer as `ip:port`, the message. */
export function hbonePeerErrorFields(e: HboneServerEvent): Record<string, unknown> {
  const fields: Record<string, unknown> = { code: e.error.code };
  if (e.error instanceof TlsRefusedError) {
    fields.reason = e.error.reason;
    if (e.error.tlsCode !== null) fields.tls_error = e.error.tlsCode;
  }
  fields.peer = e.peer.ip === undefined ? 'unknown' : formatAuthority(e.peer.ip, e.peer.port ?? 0);
  fields.error = e.error.message;
  return fields;
}

/**
 * Logs a peer error as `HBONE peer error`: handshakes we refused always at warn (an operator must be able
 * to see why a peer could not connect); a client that just left mid-handshake (peer-closed: a port probe,
 * or a client refusing our certificate, which it logs) and other peer mistakes (bad CONNECTs) at `otherLevel`.
 */
export function logHbonePeerError(
  log: Logger,
  e: HboneServerEvent,
  otherLevel: 'warn' | 'debug',
  extra: Record<string, unknown> = {},
): void {
  const fields = { ...hbonePeerErrorFields(e), ...extra };
  const refused = e.error instanceof TlsRefusedError && e.error.reason !== 'peer-closed';
  if (refused || otherLevel === 'warn') log.warn(fields, 'HBONE peer error');
  else log.debug(fields, 'HBONE peer error');
}

/** Where to listen: an address, or an already listening socket fd (an in-pod listener, docs/redirect.md). */
export type HboneListenTarget =
  | {
      readonly host: string;
      /** 0 picks a free port (tests). */
      readonly port: number;
    }
  | {
      /** A listening TCP socket; the server owns it from now on (closing the server closes it). */
      readonly fd: number;
    };

export type HboneServerOptions = HboneListenTarget & HboneServerCommonOptions;

export interface HboneServerCommonOptions {
  readonly certificate: WorkloadCertificate;
  readonly onConnect: (request: HboneConnectRequest, tunnel: HboneTunnel) => void | Promise<void>;
  readonly onPeerError?: (event: HboneServerEvent) => void;
  readonly keepalive?: KeepaliveOptions;
  /** Shared by every HBONE listener of the process (default: one of this server's own, 1024/16384). */
  readonly limiter?: ConnectionLimiter;
  /** Time a connection has to complete its TLS handshake; default 10 s. */
  readonly handshakeTimeoutMs?: number;
}

export interface HboneCloseOptions {
  /** true: GOAWAY and let open streams finish until the deadline; false: destroy everything now. */
  readonly graceful: boolean;
  readonly deadlineMs?: number;
}

export class HboneServer {
  readonly #server: Http2SecureServer;
  // Accepts TCP connections and hands the admitted ones to #server (which never listens itself).
  readonly #listener: TcpServer;
  readonly #limiter: ConnectionLimiter;
  readonly #sessions = new Set<ServerHttp2Session>();
  // Every accepted TCP connection, also those still in the TLS handshake or whose session was destroyed
  // without a 'close' (Node 24): the server cannot finish closing while any of them is open.
  readonly #sockets = new Set<Socket>();
  readonly #identities = new WeakMap<Http2Session, SpiffeId>();
  // The peer of each accepted TCP connection, read when it is accepted: a TLS socket that Node destroys
  // for a refused certificate no longer knows its remote address by the time 'tlsClientError' reports it.
  readonly #peers = new WeakMap<object, { readonly ip: string; readonly port: number }>();
  readonly #opts: HboneServerOptions;
  #trustDomain: string;
  #openStreams = 0;
  #closing: Promise<void> | null = null;
  #address = { ip: '', port: 0 };

  private constructor(opts: HboneServerOptions) {
    this.#opts = opts;
    this.#trustDomain = opts.certificate.identity.trustDomain;
    const tlsOptions = hboneServerTlsOptions(buildTlsContexts(opts.certificate));
    this.#server = createSecureServer({
      ...tlsOptions,
      allowHTTP1: false,
      settings: HBONE_SERVER_SETTINGS,
      maxSessionMemory: MAX_SESSION_MEMORY_MB,
      handshakeTimeout: opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    });
    this.#limiter = opts.limiter ?? new ConnectionLimiter(DEFAULT_CONNECTION_LIMITS.hbone);
    this.#listener = createTcpServer((socket) => {
      if (guardConnection(socket, this.#limiter)) this.#server.emit('connection', socket);
    });
    this.#listener.on('error', onIgnoredError);
    this.#server.on('connection', (socket: Socket) => {
      // Small HTTP/2 frames (responses, WINDOW_UPDATEs) must not wait for Nagle + the peer's delayed ACK.
      socket.setNoDelay(true);
      if (socket.remoteAddress !== undefined) {
        this.#peers.set(socket, { ip: unmapIpv4(socket.remoteAddress), port: socket.remotePort ?? 0 });
      }
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    this.#server.on('session', (session) => this.#onSession(session));
    this.#server.on('stream', (stream, headers) => this.#onStream(stream, headers));
    // A client that did not negotiate h2 (no ALPN, http/1.1 only): drop it now instead of after Node's
    // unknownProtocolTimeout.
    this.#server.on('unknownProtocol', (socket: TLSSocket) => {
      const refused = new TlsRefusedError(
        'FERRY_HBONE_HANDSHAKE_FAILED',
        'protocol',
        null,
        'TLS handshake refused: the client did not negotiate ALPN h2',
      );
      this.#report(socket, refused);
      socket.destroy();
    });
    this.#server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      this.#report(socket, refusedHandshake(err, socket));
    });
    this.#server.on('sessionError', onIgnoredError); // the session is destroyed; its 'close' cleans up
    this.#server.on('error', onIgnoredError);
  }

  /** Starts listening; resolves once the port is bound. */
  static async listen(opts: HboneServerOptions): Promise<HboneServer> {
    const s = new HboneServer(opts);
    s.#listener.listen('fd' in opts ? { fd: opts.fd } : { host: opts.host, port: opts.port });
    await Promise.race([
      once(s.#listener, 'listening'),
      once(s.#listener, 'error').then(([err]) => Promise.reject(err)),
    ]);
    const a = s.#listener.address() as AddressInfo;
    s.#address = { ip: a.address, port: a.port };
    return s;
  }

  /** The bound address (stays readable after close). */
  get address(): { ip: string; port: number } {
    return this.#address;
  }

  /** Live HTTP/2 sessions and open CONNECT streams (tests, metrics). */
  stats(): { sessions: number; streams: number; connections: number } {
    let sessions = 0;
    for (const s of this.#sessions) if (!s.destroyed) sessions++;
    return { sessions, streams: this.#openStreams, connections: this.#sockets.size };
  }

  /** Rotates the served certificate; new handshakes use it, established sessions keep theirs. */
  setCertificate(cert: WorkloadCertificate): void {
    this.#server.setSecureContext(hboneServerTlsOptions(buildTlsContexts(cert)));
    this.#trustDomain = cert.identity.trustDomain;
  }

  /** Stops accepting; graceful: GOAWAY and wait for streams until the deadline, then destroy. Idempotent. */
  close(opts: HboneCloseOptions = { graceful: true }): Promise<void> {
    this.#closing ??= this.#close(opts);
    return this.#closing;
  }

  async #close(opts: HboneCloseOptions): Promise<void> {
    const listenerClosed = new Promise<void>((resolve) => this.#listener.close(() => resolve()));
    const serverClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    // A session destroyed by a socket error may never emit 'close' (Node 24); those count as closed.
    const sessions = [...this.#sessions].filter((s) => !s.destroyed);
    const allClosed = Promise.all(sessions.map((s) => once(s, 'close').then(noop, noop)));
    if (opts.graceful) {
      for (const s of sessions) if (!s.closed) s.close(); // GOAWAY; in-flight streams finish
      const { promise: forced, resolve } = Promise.withResolvers<void>();
      const deadline = setTimeout(forceClose, opts.deadlineMs ?? DEFAULT_DRAIN_DEADLINE_MS, sessions, resolve);
      deadline.unref();
      await Promise.race([allClosed, forced]);
      clearTimeout(deadline);
    } else {
      destroyAll(sessions);
    }
    this.#sessions.clear();
    // Sessions are closed or destroyed; whatever TCP connections remain (handshakes, sessions that died
    // without 'close') must not hold the close open.
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    await Promise.all([listenerClosed, serverClosed]);
  }

  #onSession(session: ServerHttp2Session): void {
    session.on('error', onIgnoredError);
    if (this.#closing !== null) {
      session.destroy();
      return;
    }
    // The chain was verified by OpenSSL (rejectUnauthorized); here the trust domain (TrustDomainVerifier).
    const socket = session.socket as TLSSocket;
    const verdict = verifyClientTrustDomain(socket, this.#trustDomain);
    if (!verdict.ok) {
      this.#report(socket, verdict.error);
      session.destroy();
      return;
    }
    this.#identities.set(session, verdict.value);
    this.#sessions.add(session);
    session.once('close', () => this.#sessions.delete(session));
    session.once('error', () => this.#sessions.delete(session));
    session.setLocalWindowSize(HBONE_CONNECTION_WINDOW_BYTES);
    startKeepalive(session, this.#opts.keepalive ?? DEFAULT_KEEPALIVE);
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', onIgnoredError); // resets and aborts show up as 'close'; the splice owns the rest
    const socket = stream.session?.socket as TLSSocket | undefined;
    const identity = stream.session === undefined ? undefined : this.#identities.get(stream.session);
    if (socket === undefined || identity === undefined) {
      stream.close(h2constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const bad = validateConnect(headers);
    if (bad !== null) {
      this.#report(socket, bad);
      respondAndEnd(stream, 400);
      return;
    }
    this.#openStreams++;
    stream.once('close', () => this.#openStreams--);
    const request: HboneConnectRequest = {
      authority: headers[':authority'] as string,
      headers: readConnectHeaders(headers),
      dialedIp: unmapIpv4(socket.localAddress ?? ''),
      dialedPort: socket.localPort ?? 0,
      peer: { ip: unmapIpv4(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 },
      peerIdentity: identity,
    };
    const tunnel = new StreamTunnel(stream);
    Promise.resolve()
      .then(() => this.#opts.onConnect(request, tunnel))
      .catch((err: unknown) => {
        // A handler bug must not leave the client hanging: answer 503 if nothing was answered yet.
        tunnel.rejectIfPending(503);
        const error = err instanceof ProxyError ? err : new ProxyError('FERRY_UPSTREAM_CONNECT_FAILED', String(err));
        this.#report(socket, error);
      });
  }

  #report(socket: Socket, error: ProxyError): void {
    this.#opts.onPeerError?.({ error, peer: this.#peerOf(socket) });
  }

  #peerOf(socket: Socket): { ip: string | undefined; port: number | undefined } {
    if (socket.remoteAddress !== undefined) {
      return { ip: unmapIpv4(socket.remoteAddress), port: socket.remotePort };
    }
    // A destroyed TLS socket: the address recorded when its TCP connection was accepted. Node's TLS server
    // wraps that connection and keeps it as `_parent` (no public accessor; undefined if that ever changes).
    const transport = (socket as { _parent?: unknown })._parent;
    const known = typeof transport === 'object' && transport !== null ? this.#peers.get(transport) : undefined;
    return known === undefined ? { ip: undefined, port: undefined } : { ip: known.ip, port: known.port };
  }
}

type TunnelPhase = 'pending' | 'accepted' | 'rejected';

class StreamTunnel implements HboneTunnel {
  readonly #stream: ServerHttp2Stream;
  readonly #abort = new AbortController();
  #phase: TunnelPhase = 'pending';

  constructor(stream: ServerHttp2Stream) {
    this.#stream = stream;
    stream.once('close', () => {
      if (this.#phase === 'pending') this.#abort.abort(new ProxyError('FERRY_HBONE_BAD_REQUEST', 'stream closed'));
    });
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  accept(): Duplex {
    if (this.#phase !== 'pending') throw new TypeError(`HBONE tunnel already ${this.#phase}`);
    this.#phase = 'accepted';
    if (!this.#stream.destroyed && !this.#stream.closed) this.#stream.respond({ ':status': 200 });
    return hardenTunnelStream(this.#stream);
  }

  reject(status: HboneRejectStatus): void {
    if (this.#phase !== 'pending') throw new TypeError(`HBONE tunnel already ${this.#phase}`);
    this.#phase = 'rejected';
    respondAndEnd(this.#stream, status);
  }

  rejectIfPending(status: HboneRejectStatus): void {
    if (this.#phase === 'pending') this.reject(status);
  }
}

/**
 * The refusal behind a 'tlsClientError'. With `rejectUnauthorized`, Node lets OpenSSL finish the handshake,
 * stores the chain's verify code in `authorizationError` and destroys the socket, which then reports only
 * "socket hang up": the verify code is the real reason. Otherwise the error's own code (no certificate,
 * TLS version, not TLS at all, the client went away).
 */
function refusedHandshake(err: Error, socket: TLSSocket): TlsRefusedError {
  const verifyCode = verifyErrorCode(socket.authorizationError);
  if (verifyCode !== null) {
    const reason = classifyTlsErrorCode(verifyCode);
    return new TlsRefusedError(
      'FERRY_HBONE_HANDSHAKE_FAILED',
      reason,
      verifyCode,
      `TLS handshake refused: client ${describeTlsRefusal(reason)} (${verifyCode})`,
      { cause: err },
    );
  }
  const errCode = (err as NodeJS.ErrnoException).code;
  const code = typeof errCode === 'string' ? errCode : null;
  const reason = classifyTlsErrorCode(code);
  return new TlsRefusedError(
    'FERRY_HBONE_HANDSHAKE_FAILED',
    reason,
    code,
    `TLS handshake failed: ${describeTlsRefusal(reason)} (${code === null ? '' : `${code}: `}${err.message})`,
    { cause: err },
  );
}

/** Null when the request is a well-formed authority-form CONNECT (RFC 9113 §8.5), else why not. */
export function validateConnect(headers: IncomingHttpHeaders): ProxyError | null {
  const method = headers[':method'];
  if (method !== 'CONNECT') {
    return new ProxyError('FERRY_HBONE_BAD_REQUEST', `method ${JSON.stringify(method)} is not CONNECT`);
  }
  if (headers[':path'] !== undefined || headers[':scheme'] !== undefined || headers[':protocol'] !== undefined) {
    return new ProxyError('FERRY_HBONE_BAD_REQUEST', 'CONNECT must not carry :path, :scheme or :protocol');
  }
  const authority = headers[':authority'];
  if (typeof authority !== 'string') return new ProxyError('FERRY_HBONE_BAD_AUTHORITY', 'missing :authority');
  const parsed = parseHboneAuthority(authority);
  return parsed.ok ? null : parsed.error;
}

function respondAndEnd(stream: ServerHttp2Stream, status: number): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond({ ':status': status }, { endStream: true });
}

function destroyAll(sessions: readonly ServerHttp2Session[]): void {
  // GOAWAY with CANCEL, not NO_ERROR: the client must tear its open tunnels down now, not treat this as a
  // graceful drain and keep waiting on streams that will never finish.
  for (const s of sessions) if (!s.destroyed) s.destroy(undefined, h2constants.NGHTTP2_CANCEL);
}

function forceClose(sessions: readonly ServerHttp2Session[], done: () => void): void {
  destroyAll(sessions);
  done();
}

// Peer-caused errors end that session or stream; Node reports them here after tearing it down.
function onIgnoredError(): void {}
function noop(): void {}
