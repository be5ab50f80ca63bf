// One outbound HBONE connection (docs/architecture.md "HBONE (wire contract)"–§2.5): TCP (optionally bound to the
// source pod's IP) → TLS 1.3 with the source SVID, no SNI, server URI SAN checked against the expected
// identities → HTTP/2 with Istio's windows and PING keepalive. A dial resolves only once the server's
// SETTINGS arrived: in TLS 1.3 the server verifies our certificate after our side considers the handshake
// done, so SETTINGS is the first proof that the peer accepted us. Stream accounting is the pool's concern;
// this module only counts what it opened.
import { once } from 'node:events';
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect as h2connect,
  constants as h2constants,
  type IncomingHttpHeaders,
} from 'node:http2';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { ProxyError } from '../errors.ts';
import type { SpiffeId } from '../identity/spiffe-id.ts';
import { type HboneTlsContexts, hboneClientTlsOptions } from '../identity/tls-context.ts';
import { classifyTlsErrorCode, describeTlsRefusal, TlsRefusedError } from '../identity/tls-refusal.ts';
import type { IpPort } from '../mesh/ip-addr.ts';
import { formatIpPort } from './authority.ts';
import { DEFAULT_KEEPALIVE, type KeepaliveOptions, startKeepalive } from './keepalive.ts';
import { HBONE_CONNECTION_WINDOW_BYTES } from './server.ts';
import type { SocketFactory } from './socket-factory.ts';
import { hardenTunnelStream } from './tunnel-stream.ts';

const MiB = 1024 * 1024;
// Client-side HTTP/2 settings of Istio's outbound pool (docs/architecture.md "HBONE (wire contract)").
export const HBONE_CLIENT_SETTINGS = {
  initialWindowSize: 4 * MiB,
  maxFrameSize: 1 * MiB,
  maxHeaderListSize: 16 * 1024,
  enablePush: false,
} as const;
/** POOL_MAX_STREAMS_PER_CONNECTION of Istio: more tunnels open a second connection. */
export const MAX_STREAMS_PER_CONNECTION = 100;
const MAX_SESSION_MEMORY_MB = 256;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * A CONNECT the peer never processed: refused (RST_STREAM REFUSED_STREAM, e.g. sent as its GOAWAY crossed
 * it), or not even sent because the connection was closing. HTTP/2 guarantees nothing reached the target,
 * so the pool retries it on another connection (a ztunnel being replaced sends GOAWAY as it drains).
 */
export class HboneRefusedError extends ProxyError {
  constructor(message: string, options?: ErrorOptions) {
    super('FERRY_HBONE_HANDSHAKE_FAILED', message, options);
    this.name = 'HboneRefusedError';
  }
}

/** A CONNECT answered with something other than 200. */
export class HboneStatusError extends ProxyError {
  readonly status: number;
  constructor(status: number, authority: string) {
    super('FERRY_HBONE_UPSTREAM_STATUS', `HBONE CONNECT ${authority} answered ${status}`);
    this.name = 'HboneStatusError';
    this.status = status;
  }
}

export interface HboneDialOptions {
  readonly tls: HboneTlsContexts;
  readonly expectedIdentities: readonly SpiffeId[];
  /** Bind the TCP socket to this local IP (a loopback "pod" dials from its own address). */
  readonly sourceIp?: string;
  readonly dst: IpPort;
  readonly keepalive?: KeepaliveOptions;
  readonly connectTimeoutMs?: number;
  /** Creates the TCP socket (e.g. inside the source pod's netns); default: TLS dials from the host. */
  readonly socketFactory?: SocketFactory;
}

type ConnState = 'ready' | 'draining' | 'closed';

export class HboneConnection {
  readonly #session: ClientHttp2Session;
  #state: ConnState = 'ready';
  #openStreams = 0;
  #idleTimeoutMs = 0;
  #idleTimer: NodeJS.Timeout | null = null;
  /** Called once with this connection when it has gone idle, got GOAWAY or closed: do not reuse it. */
  onRetire: ((conn: HboneConnection) => void) | null = null;
  /** Called once when the session has closed. */
  onClosed: ((conn: HboneConnection) => void) | null = null;

  private constructor(session: ClientHttp2Session) {
    this.#session = session;
    session.on('goaway', () => this.#retire('draining'));
    session.once('close', () => this.#retire('closed'));
  }

  /** Opens TCP + TLS + HTTP/2 and waits for the server's SETTINGS. */
  static async dial(opts: HboneDialOptions): Promise<HboneConnection> {
    const tlsOptions = hboneClientTlsOptions(opts.tls, opts.expectedIdentities);
    const socket =
      opts.socketFactory === undefined
        ? tlsConnect({
            host: opts.dst.ip,
            port: opts.dst.port,
            ...(opts.sourceIp === undefined ? {} : { localAddress: opts.sourceIp }),
            ...tlsOptions,
          })
        : tlsConnect({ socket: rawSocket(opts.socketFactory, opts), ...tlsOptions });
    socket.setNoDelay(true);
    const session = h2connect(`https://${formatIpPort(opts.dst)}`, {
      createConnection: () => socket,
      settings: HBONE_CLIENT_SETTINGS,
      maxSessionMemory: MAX_SESSION_MEMORY_MB,
    });
    let socketError: Error | null = null;
    // A TLS alert that arrives after 'secureConnect' (TLS 1.3: the server rejecting our certificate) errors
    // the socket, destroys the session, yet neither emits 'close' (observed on Node 24): watch the socket.
    const socketFailed = new Promise<never>((_resolve, reject) => {
      socket.on('error', (err) => {
        socketError ??= err;
        session.destroy();
        reject(err);
      });
    });
    socketFailed.catch(noop);
    session.on('error', onIgnoredError); // surfaces below as the dial's rejection or as 'close'
    const timeout = AbortSignal.timeout(opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    try {
      await Promise.race([
        once(session, 'remoteSettings', { signal: timeout }),
        once(session, 'close', { signal: timeout }).then(() => Promise.reject(new Error('connection closed'))),
        socketFailed,
      ]);
    } catch (err) {
      session.destroy();
      // Surface the socket's own error (alert from the server, identity mismatch) rather than the race's.
      const cause: Error = socketError ?? (err instanceof Error ? err : new Error(String(err)));
      if (cause instanceof ProxyError) throw cause;
      throw handshakeFailed(opts.dst, cause);
    }
    session.setLocalWindowSize(HBONE_CONNECTION_WINDOW_BYTES);
    startKeepalive(session, opts.keepalive ?? DEFAULT_KEEPALIVE);
    const conn = new HboneConnection(session);
    socket.on('error', () => conn.#retire('closed')); // same Node quirk after setup: never reuse it
    // The peer's connection is gone (its process exited, its host reset it): end the session and every
    // tunnel on it now, so their clients are closed too instead of waiting on a PING timeout.
    const onGone = (): void => {
      conn.#retire('closed');
      if (!session.destroyed) session.destroy();
    };
    socket.once('close', onGone);
    socket.once('end', onGone);
    return conn;
  }

  get state(): ConnState {
    return this.#state;
  }

  get openStreams(): number {
    return this.#openStreams;
  }

  /** How many tunnels this connection may carry: ours (100) or the peer's limit, whichever is lower. */
  get maxStreams(): number {
    const peer = this.#session.remoteSettings.maxConcurrentStreams ?? MAX_STREAMS_PER_CONNECTION;
    return Math.min(MAX_STREAMS_PER_CONNECTION, peer);
  }

  /** True when a new tunnel may be opened here now. */
  get hasCapacity(): boolean {
    return this.#state === 'ready' && !this.#session.destroyed && this.#openStreams < this.maxStreams;
  }

  /** Evict this connection after it has carried no tunnel for idleTimeoutMs (0 disables). */
  setIdleTimeout(ms: number): void {
    this.#idleTimeoutMs = ms;
    if (this.#openStreams === 0) this.#armIdle();
  }

  /**
   * Opens a CONNECT stream; resolves with it after a 200. Takes a stream slot synchronously, so a caller
   * that checked hasCapacity keeps its slot across the await.
   */
  openTunnel(authority: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Duplex> {
    if (this.#state !== 'ready') {
      return Promise.reject(new HboneRefusedError('HBONE connection is not usable'));
    }
    this.#openStreams++;
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    let stream: ClientHttp2Stream;
    try {
      stream = this.#session.request(
        { ...headers, ':method': 'CONNECT', ':authority': authority },
        { endStream: false },
      );
    } catch (err) {
      this.#onStreamClosed();
      return Promise.reject(new HboneRefusedError(`cannot open CONNECT stream: ${String(err)}`, { cause: err }));
    }
    stream.on('error', onIgnoredError); // after the 200 the splice sees errors as 'close'
    stream.once('close', () => this.#onStreamClosed());
    return awaitResponse(stream, authority, signal);
  }

  /** GOAWAY; open tunnels finish. */
  close(): Promise<void> {
    this.#retire('draining');
    if (this.#session.closed)
      return this.#session.destroyed ? Promise.resolve() : once(this.#session, 'close').then(noop);
    const closed = once(this.#session, 'close').then(noop);
    this.#session.close();
    return closed;
  }

  destroy(): void {
    this.#session.destroy();
  }

  #onStreamClosed(): void {
    this.#openStreams--;
    if (this.#openStreams === 0) this.#armIdle();
  }

  #armIdle(): void {
    if (this.#idleTimeoutMs <= 0 || this.#state !== 'ready') return;
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(onIdle, this.#idleTimeoutMs, this);
    this.#idleTimer.unref();
  }

  #retire(next: 'draining' | 'closed'): void {
    const was = this.#state;
    if (was === 'closed' || was === next) return;
    this.#state = next;
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    if (was === 'ready') this.onRetire?.(this);
    if (next === 'closed') {
      this.onClosed?.(this);
      return;
    }
    // A draining connection with nothing in flight has no reason to stay open.
    if (this.#openStreams === 0 && !this.#session.closed) this.#session.close();
  }
}

/** The factory's TCP socket; a synchronous failure becomes the dial's rejection. */
function rawSocket(factory: SocketFactory, opts: HboneDialOptions) {
  try {
    return factory.connect(opts.dst, opts.sourceIp === undefined ? {} : { localAddress: opts.sourceIp });
  } catch (cause) {
    throw new ProxyError(
      'FERRY_HBONE_HANDSHAKE_FAILED',
      `cannot create a socket to ${formatIpPort(opts.dst)}: ${(cause as Error).message ?? String(cause)}`,
      { cause },
    );
  }
}

/**
 * Why our handshake with dst failed, classified (tls-refusal.ts): the server's certificate refused by us
 * (expired, unknown-ca, …: OpenSSL's verify code), or the server going away right after our handshake,
 * which in TLS 1.3 is how a server refuses *our* certificate (peer-closed: the server's log says why).
 */
function handshakeFailed(dst: IpPort, cause: Error): TlsRefusedError {
  const errCode = (cause as NodeJS.ErrnoException).code;
  const code = typeof errCode === 'string' ? errCode : null;
  const reason = classifyTlsErrorCode(code);
  const what =
    reason === 'peer-closed'
      ? 'the server closed the connection (it may have refused our certificate)'
      : describeTlsRefusal(reason);
  return new TlsRefusedError(
    'FERRY_HBONE_HANDSHAKE_FAILED',
    reason,
    code,
    `HBONE handshake with ${formatIpPort(dst)} failed: ${what} (${code === null ? '' : `${code}: `}${cause.message})`,
    { cause },
  );
}

function onIdle(conn: HboneConnection): void {
  void conn.close();
}

function awaitResponse(stream: ClientHttp2Stream, authority: string, signal: AbortSignal | undefined): Promise<Duplex> {
  return new Promise<Duplex>((resolve, reject) => {
    const onResponse = (headers: IncomingHttpHeaders): void => {
      cleanup();
      const status = Number(headers[':status']);
      if (status === 200) {
        resolve(hardenTunnelStream(stream));
        return;
      }
      stream.close(h2constants.NGHTTP2_CANCEL);
      reject(new HboneStatusError(status, authority));
    };
    const onClose = (): void => {
      cleanup();
      const code = stream.rstCode ?? 0;
      const message = `CONNECT ${authority} reset before a response (code ${code})`;
      reject(
        code === h2constants.NGHTTP2_REFUSED_STREAM
          ? new HboneRefusedError(message)
          : new ProxyError('FERRY_HBONE_HANDSHAKE_FAILED', message),
      );
    };
    const onAbort = (): void => {
      cleanup();
      stream.close(h2constants.NGHTTP2_CANCEL);
      reject(signal?.reason);
    };
    const cleanup = (): void => {
      stream.off('response', onResponse);
      stream.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    if (signal?.aborted) {
      onAbort();
      return;
    }
    stream.once('response', onResponse);
    stream.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function onIgnoredError(): void {}
function noop(): void {}
