// HTTP/1.1 from the waypoint to one pod (docs/architecture.md "How a connection flows through the code" step 6): each upstream HTTP connection is one HBONE
// CONNECT stream (`:authority=podIP:targetPort`, the waypoint's SVID, the pod's identity verified) through
// the ztunnel's HboneClientPool, or a plain TCP socket for a pod outside the mesh. Idle HTTP connections
// are kept per endpoint and reused (node:http's Agent, taught that its "sockets" are tunnel streams).
// Every tunnel opened reports its outcome to `outliers` (keyed by next hop, like the ztunnel's), which the
// endpoint choice (endpoints.ts) reads: an endpoint whose connects keep failing is left out for a while.

import http from 'node:http';
import type { Http2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import { ProxyError } from '../../errors.ts';
import { endpointKey } from '../../hbone/authority.ts';
import { dialTcp, isEndpointFailure } from '../../hbone/dial.ts';
import type { HboneClientPool } from '../../hbone/pool.ts';
import type { SocketFactory } from '../../hbone/socket-factory.ts';
import type { WorkloadCertificate } from '../../identity/workload-certificate.ts';
import { OutlierDetector } from '../../mesh/outlier-detection.ts';
import { UndiciH1, undiciTunnelState } from './h1-undici.ts';
import { H2Sessions } from './h2.ts';
import { fromIncomingHeaders, toOutgoingHeaders } from './headers.ts';
import type { UpstreamEndpoint, UpstreamProtocol, UpstreamRequest, UpstreamResponse } from './types.ts';
import { UpstreamError } from './types.ts';

export interface UpstreamClientOptions {
  readonly pool: HboneClientPool;
  /** The waypoint's own certificate (current one; rotation replaces it). */
  readonly certificate: () => Promise<WorkloadCertificate>;
  readonly sockets: SocketFactory;
  /** The waypoint's pod IP, the source of upstream HBONE connections (part of the pool key). */
  readonly sourceIp?: string;
  readonly connectTimeoutMs?: number;
  readonly maxIdlePerEndpoint?: number;
  readonly idleTimeoutMs?: number;
  /** Where connect outcomes go (default: a detector of this client's own). */
  readonly outliers?: OutlierDetector;
  /**
   * HTTP/1.1 client: undici over the tunnel streams (default; less CPU per request, docs/performance.md),
   * or node:http's Agent.
   */
  readonly http1?: 'undici' | 'agent';
}

/** The next hop of an endpoint: its HBONE port in the mesh, its own port outside it (the detector's key). */
export function nextHopKey(endpoint: Pick<UpstreamEndpoint, 'ip' | 'port' | 'tunnel'>): string {
  const port = endpoint.tunnel.kind === 'hbone' ? endpoint.tunnel.hbonePort : endpoint.port;
  return endpointKey({ ip: endpoint.ip, port });
}

interface TunnelRequestOptions extends http.RequestOptions {
  readonly endpoint: UpstreamEndpoint;
}

/** An Agent whose connections are tunnel streams: no TCP keepalive or ref/unref on them. */
class TunnelAgent extends http.Agent {
  readonly #open: (endpoint: UpstreamEndpoint) => Promise<Duplex>;

  constructor(open: (endpoint: UpstreamEndpoint) => Promise<Duplex>, opts: http.AgentOptions) {
    super(opts);
    this.#open = open;
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const endpoint = (options as TunnelRequestOptions).endpoint;
    this.#open(endpoint).then(
      (stream) => {
        watchDrain(stream);
        callback?.(null, asAgentSocket(stream));
      },
      (err: unknown) => callback?.(err as Error, undefined as unknown as Duplex),
    );
    return undefined;
  }

  /** A tunnel on an HBONE connection that got GOAWAY is not reused: the next request opens a new one. */
  override keepSocketAlive(socket: Parameters<http.Agent['keepSocketAlive']>[0]): boolean {
    if (isDraining(socket)) return false; // the Agent destroys it instead of pooling it
    super.keepSocketAlive(socket); // node:http's always keeps it (returns true; typed void)
    return true;
  }
}

/**
 * The tunnels (keep-alive HTTP connections) on each HBONE connection. When the peer ztunnel drains (it is
 * being replaced: GOAWAY), the idle ones close now and the busy ones after their response, so requests move
 * to a new connection (the new process) instead of riding the old one until its drain deadline cuts them.
 */
const tunnelsOf = new WeakMap<Http2Session, Set<Duplex>>();
const DRAINING = Symbol('ferry.tunnelDraining');

function watchDrain(stream: Duplex): void {
  const session = (stream as Duplex & { session?: Http2Session }).session;
  if (session === undefined) return; // plain TCP to a pod outside the mesh
  let set = tunnelsOf.get(session);
  if (set === undefined) {
    const tunnels = new Set<Duplex>();
    set = tunnels;
    tunnelsOf.set(session, tunnels);
    session.once('goaway', () => {
      for (const t of tunnels) {
        (t as Duplex & { [DRAINING]?: true })[DRAINING] = true;
        const undici = undiciTunnelState(t);
        const idle =
          undici === undefined ? (t as Duplex & { _httpMessage?: unknown })._httpMessage == null : undici === 'idle';
        if (idle) t.destroy(); // idle in the agent or in the undici client's list
      }
    });
  }
  set.add(stream);
  stream.once('close', () => set.delete(stream));
}

function isDraining(socket: Duplex): boolean {
  return (socket as Duplex & { [DRAINING]?: true })[DRAINING] === true;
}

/**
 * node:http's Agent keeps and reuses sockets through socket methods a tunnel stream lacks (ref, unref,
 * setKeepAlive); giving them no-op forms lets the Agent's own bookkeeping run unchanged (its reuseSocket
 * also removes the idle-socket error listener; a replacement that skipped it leaked one per request).
 */
function asAgentSocket(stream: Duplex): Duplex {
  const s = stream as Duplex & { ref?: () => unknown; unref?: () => unknown; setKeepAlive?: () => unknown };
  s.ref ??= () => s;
  s.unref ??= () => s;
  s.setKeepAlive ??= () => s;
  return s;
}

export class UpstreamClient {
  /** Connect outcomes per next hop: read by the endpoint choice. */
  readonly outliers: OutlierDetector;
  readonly #opts: UpstreamClientOptions;
  readonly #agent: TunnelAgent;
  readonly #h2: H2Sessions;
  readonly #undici: UndiciH1 | null;

  constructor(opts: UpstreamClientOptions) {
    this.#opts = opts;
    this.outliers = opts.outliers ?? new OutlierDetector();
    this.#agent = new TunnelAgent((endpoint) => this.#openTunnel(endpoint), {
      keepAlive: true,
      maxFreeSockets: opts.maxIdlePerEndpoint ?? 32,
      timeout: opts.idleTimeoutMs ?? 60_000,
      scheduling: 'lifo',
    });
    this.#h2 = new H2Sessions((endpoint) => this.#openTunnel(endpoint));
    this.#undici =
      (opts.http1 ?? 'undici') === 'undici'
        ? new UndiciH1({
            open: async (endpoint) => {
              const stream = await this.#openTunnel(endpoint);
              watchDrain(stream);
              return stream;
            },
            draining: isDraining,
            maxIdlePerEndpoint: opts.maxIdlePerEndpoint ?? 32,
            idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
          })
        : null;
  }

  /** A raw byte stream to the endpoint (an upgraded connection is spliced onto it). */
  openRaw(endpoint: UpstreamEndpoint): Promise<Duplex> {
    return this.#openTunnel(endpoint);
  }

  async #openTunnel(endpoint: UpstreamEndpoint): Promise<Duplex> {
    const hop = nextHopKey(endpoint);
    try {
      const stream = await this.#dial(endpoint);
      this.outliers.recordSuccess(hop);
      return stream;
    } catch (err) {
      const cause = (err as Error).cause;
      const failure = cause instanceof ProxyError ? cause : err;
      if (failure instanceof ProxyError && isEndpointFailure(failure)) this.outliers.recordFailure(hop, Date.now());
      throw err;
    }
  }

  async #dial(endpoint: UpstreamEndpoint): Promise<Duplex> {
    const target = { ip: endpoint.ip, port: endpoint.port };
    if (endpoint.tunnel.kind === 'plain') {
      return dialTcp(target, { timeoutMs: this.#opts.connectTimeoutMs ?? 10_000, sockets: this.#opts.sockets });
    }
    const cert = await this.#opts.certificate();
    try {
      return await this.#opts.pool.connect({
        source: cert,
        ...(this.#opts.sourceIp === undefined ? {} : { sourceIp: this.#opts.sourceIp }),
        dst: { ip: endpoint.ip, port: endpoint.tunnel.hbonePort },
        expectedIdentities: [endpoint.tunnel.identity],
        authority: `${endpoint.ip.includes(':') ? `[${endpoint.ip}]` : endpoint.ip}:${endpoint.port}`,
        socketFactory: this.#opts.sockets,
      });
    } catch (err) {
      throw new UpstreamError(
        'FERRY_UPSTREAM_CONNECT_FAILED',
        `${endpoint.ip}:${endpoint.port}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  /** Sends one request as HTTP/1.1 or HTTP/2; resolves when the response head arrived (the body streams). */
  send(
    endpoint: UpstreamEndpoint,
    req: UpstreamRequest,
    protocol: UpstreamProtocol,
    signal: AbortSignal,
  ): Promise<UpstreamResponse> {
    return protocol === 'http2' ? this.#h2.request(endpoint, req, signal) : this.request(endpoint, req, signal);
  }

  /** Sends one HTTP/1.1 request; resolves when the response head arrived (the body streams). */
  request(endpoint: UpstreamEndpoint, req: UpstreamRequest, signal: AbortSignal): Promise<UpstreamResponse> {
    if (this.#undici !== null) return this.#undici.request(endpoint, req, signal);
    return new Promise((resolve, reject) => {
      const headers = toOutgoingHeaders(req.headers);
      headers.host = req.authority;
      const options: TunnelRequestOptions = {
        agent: this.#agent,
        host: endpoint.ip,
        port: endpoint.port,
        method: req.method,
        path: req.path,
        headers,
        signal,
        endpoint,
      };
      const out = http.request(options, (res) => {
        resolve({
          status: res.statusCode ?? 502,
          headers: fromIncomingHeaders(res.headers),
          body: res,
          trailers: () => fromIncomingHeaders(res.trailers),
          endpoint,
        });
      });
      out.on('error', (err: Error & { code?: string }) => {
        if (err instanceof UpstreamError || err.name === 'AbortError') reject(err);
        else
          reject(
            new UpstreamError('FERRY_UPSTREAM_RESET', `${endpoint.ip}:${endpoint.port}: ${err.message}`, {
              cause: err,
            }),
          );
      });
      if (req.body === null) out.end();
      else if (Buffer.isBuffer(req.body)) out.end(req.body);
      else req.body.pipe(out);
    });
  }

  close(): void {
    this.#agent.destroy();
    this.#h2.close();
    this.#undici?.close();
  }
}
