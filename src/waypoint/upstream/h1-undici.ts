// HTTP/1.1 from the waypoint to one pod through undici (issue 12): each upstream HTTP connection is one
// undici Client whose only "socket" is a tunnel stream (HBONE CONNECT, or plain TCP outside the mesh),
// opened by the caller's `open`. undici's parser (llhttp) reads the stream directly instead of node:http's
// ClientRequest/IncomingMessage machinery per request. Idle connections are kept per endpoint, newest first,
// like the Agent did; a connection whose HBONE connection got GOAWAY is closed after its response instead
// of going back to the idle list, so requests move to the peer's replacement (see client.ts).
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { Client } from 'undici';
import { fromIncomingHeaders } from './headers.ts';
import {
  type HeaderMap,
  type UpstreamEndpoint,
  UpstreamError,
  type UpstreamRequest,
  type UpstreamResponse,
} from './types.ts';

/** Request headers undici refuses or sets itself; hop-by-hop ones are already gone (client.ts). */
const UNDICI_OWN = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'content-length']);

export interface UndiciH1Options {
  /** Opens one tunnel stream to the endpoint and records the outcome (client.ts). */
  readonly open: (endpoint: UpstreamEndpoint) => Promise<Duplex>;
  /** Whether a tunnel is on an HBONE connection that is going away (client.ts's drain watch). */
  readonly draining: (stream: Duplex) => boolean;
  readonly maxIdlePerEndpoint: number;
  readonly idleTimeoutMs: number;
}

interface Conn {
  readonly client: Client;
  tunnel: Duplex | null;
  idleTimer: NodeJS.Timeout | null;
}

/** Tunnels of this client, and which of them sit idle (the drain watch closes only those at once). */
const ownTunnels = new WeakSet<Duplex>();
const idleTunnels = new WeakSet<Duplex>();

/** 'idle' / 'busy' for a tunnel carrying undici connections, undefined for anyone else's. */
export function undiciTunnelState(stream: Duplex): 'idle' | 'busy' | undefined {
  if (!ownTunnels.has(stream)) return undefined;
  return idleTunnels.has(stream) ? 'idle' : 'busy';
}

const keyOf = (e: UpstreamEndpoint): string =>
  `${e.ip}|${e.port}|${e.tunnel.kind === 'hbone' ? `${e.tunnel.identity.namespace}/${e.tunnel.identity.serviceAccount}` : 'plain'}`;

/** `streamed`: a streamed body keeps the caller's content-length (else undici would send it chunked). */
function toUndiciHeaders(headers: HeaderMap, authority: string, streamed: boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = { host: authority };
  for (const [name, values] of headers) {
    if (name === 'content-length' && streamed && values.length === 1) out[name] = values[0] as string;
    if (UNDICI_OWN.has(name) || name === 'host' || name.startsWith(':') || name === 'te') continue;
    out[name] = values.length === 1 ? (values[0] as string) : [...values];
  }
  return out;
}

export class UndiciH1 {
  readonly #opts: UndiciH1Options;
  readonly #idle = new Map<string, Conn[]>();
  #closed = false;

  constructor(opts: UndiciH1Options) {
    this.#opts = opts;
  }

  #take(endpoint: UpstreamEndpoint): Conn {
    const list = this.#idle.get(keyOf(endpoint));
    for (let c = list?.pop(); c !== undefined; c = list?.pop()) {
      if (c.idleTimer !== null) clearTimeout(c.idleTimer);
      c.idleTimer = null;
      if (c.tunnel !== null) idleTunnels.delete(c.tunnel);
      if (!c.client.destroyed && c.tunnel !== null && !c.tunnel.destroyed && !this.#opts.draining(c.tunnel)) return c;
      void c.client.destroy().catch(() => undefined);
    }
    const conn: Conn = { client: null as unknown as Client, tunnel: null, idleTimer: null };
    (conn as { client: Client }).client = new Client(
      `http://${endpoint.ip.includes(':') ? `[${endpoint.ip}]` : endpoint.ip}:${endpoint.port}`,
      {
        pipelining: 1,
        keepAliveTimeout: this.#opts.idleTimeoutMs,
        keepAliveMaxTimeout: this.#opts.idleTimeoutMs,
        headersTimeout: 0,
        bodyTimeout: 0,
        connect: (_o, cb) => {
          this.#opts.open(endpoint).then(
            (tunnel) => {
              conn.tunnel = tunnel;
              ownTunnels.add(tunnel);
              cb(null, tunnel as unknown as import('node:net').Socket);
            },
            (err: Error) => cb(err, null),
          );
        },
      },
    );
    return conn;
  }

  #release(endpoint: UpstreamEndpoint, conn: Conn, reusable: boolean): void {
    const tunnel = conn.tunnel;
    if (
      this.#closed ||
      !reusable ||
      conn.client.destroyed ||
      tunnel === null ||
      tunnel.destroyed ||
      this.#opts.draining(tunnel)
    ) {
      void conn.client.destroy().catch(() => undefined);
      return;
    }
    const key = keyOf(endpoint);
    let list = this.#idle.get(key);
    if (list === undefined) {
      list = [];
      this.#idle.set(key, list);
    }
    if (list.length >= this.#opts.maxIdlePerEndpoint) {
      void conn.client.destroy().catch(() => undefined);
      return;
    }
    list.push(conn);
    idleTunnels.add(tunnel);
    conn.idleTimer = setTimeout(() => {
      const i = list.indexOf(conn);
      if (i >= 0) list.splice(i, 1);
      void conn.client.destroy().catch(() => undefined);
    }, this.#opts.idleTimeoutMs);
    conn.idleTimer.unref();
  }

  /** Sends one HTTP/1.1 request; resolves when the response head arrived (the body streams). */
  async request(endpoint: UpstreamEndpoint, req: UpstreamRequest, signal: AbortSignal): Promise<UpstreamResponse> {
    const conn = this.#take(endpoint);
    let data: Awaited<ReturnType<Client['request']>>;
    try {
      data = await conn.client.request({
        path: req.path,
        method: req.method as 'GET',
        headers: toUndiciHeaders(req.headers, req.authority, req.body !== null && !Buffer.isBuffer(req.body)),
        body: req.body,
        signal,
        // A request whose body streams, or whose peer might not reuse the connection, is not retried by undici.
        idempotent: false,
      } as Parameters<Client['request']>[0]);
    } catch (err) {
      void conn.client.destroy().catch(() => undefined);
      if (err instanceof UpstreamError || (err as Error).name === 'AbortError') throw err;
      const cause = (err as Error & { cause?: unknown }).cause;
      if (cause instanceof UpstreamError) throw cause;
      throw new UpstreamError('FERRY_UPSTREAM_RESET', `${endpoint.ip}:${endpoint.port}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const body = data.body as unknown as Readable;
    let done = false;
    const finish = (reusable: boolean) => {
      if (done) return;
      done = true;
      // After 'end' undici has finished the message; reuse it on the next tick, when it is idle again.
      if (reusable) setImmediate(() => this.#release(endpoint, conn, true));
      else this.#release(endpoint, conn, false);
    };
    body.once('end', () => finish(true));
    body.once('error', () => finish(false));
    body.once('close', () => finish(false));
    return {
      status: data.statusCode,
      headers: fromIncomingHeaders(data.headers as IncomingHttpHeaders),
      body,
      trailers: () => fromIncomingHeaders((data.trailers ?? {}) as IncomingHttpHeaders),
      endpoint,
    };
  }

  close(): void {
    this.#closed = true;
    for (const list of this.#idle.values()) {
      for (const c of list) {
        if (c.idleTimer !== null) clearTimeout(c.idleTimer);
        void c.client.destroy().catch(() => undefined);
      }
    }
    this.#idle.clear();
  }
}
