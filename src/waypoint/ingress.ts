// The waypoint's HBONE listener (docs/architecture.md "How a connection flows through the code" step 6, §5.1): a CONNECT whose authority is `VIP:port` of a
// Service this waypoint serves is accepted (200) and its byte stream is served as HTTP — HTTP/2 when the
// client starts with the h2 preface (h2c prior knowledge), HTTP/1.1 otherwise — or, for an appProtocol
// `tcp` port, spliced whole to one endpoint, and where a TCPRoute applies, to one weighted backend
// (tcp-route.ts). Unknown destinations get 503, malformed authorities 400.
// Malformed HTTP costs the client its tunnel only (400 / stream reset); everyone else keeps being served.
import http from 'node:http';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { BackendSplitter } from '../../gateway-api/weights.ts';
import { parseHboneAuthority } from '../hbone/authority.ts';
import type { HboneClientPool } from '../hbone/pool.ts';
import {
  type HboneConnectRequest,
  type HboneListenTarget,
  HboneServer,
  type HboneTunnel,
  logHbonePeerError,
} from '../hbone/server.ts';
import type { SocketFactory } from '../hbone/socket-factory.ts';
import { formatSpiffeId } from '../identity/spiffe-id.ts';
import type { WorkloadCertificate } from '../identity/workload-certificate.ts';
import { resolveServiceEndpoint } from '../mesh/load-balance.ts';
import { workloadIdentity } from '../mesh/mesh-view.ts';
import type { Logger } from '../runtime/logger.ts';
import type { RequestPipeline } from './pipeline.ts';
import { type DownstreamContext, type ServiceTarget, serviceName, type WaypointState } from './state.ts';
import { serveTcpRoute } from './tcp-route.ts';
import type { UpstreamClient } from './upstream/client.ts';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const MAX_HEADER_BYTES = 16 * 1024;
const HEADERS_TIMEOUT_MS = 30_000;
/**
 * Idle keep-alive connections are kept an hour, Envoy's default downstream idle_timeout (as in an Istio
 * waypoint). Node's default of 5 s closed the idle ones of a client's pool every 5 s, and the reconnects
 * that followed, all at once, showed up as 50–90 ms stalls for every request in flight.
 */
const KEEP_ALIVE_TIMEOUT_MS = 3_600_000;

/**
 * HTTP/2 with prior knowledge (h2c) starts with the whole connection preface (RFC 9113 §3.4, §3.3);
 * anything else is HTTP/1.x, including a request line that merely begins with "PRI". 'more' while the
 * bytes so far are a strict prefix of the preface.
 */
export function sniffHttpVersion(head: Uint8Array): 'http2' | 'http1' | 'more' {
  const n = Math.min(head.length, H2_PREFACE.length);
  if (Buffer.compare(head.subarray(0, n), H2_PREFACE.subarray(0, n)) !== 0) return 'http1';
  return n === H2_PREFACE.length ? 'http2' : 'more';
}

export interface IngressOptions {
  readonly listen: HboneListenTarget;
  readonly certificate: WorkloadCertificate;
  readonly state: () => WaypointState;
  readonly pipeline: RequestPipeline;
  readonly log: Logger;
  /** For appProtocol tcp ports: raw tunnels to the chosen pod. */
  readonly tcp: {
    readonly pool: HboneClientPool;
    readonly certificate: () => Promise<WorkloadCertificate>;
    readonly sockets: SocketFactory;
    readonly hbonePort: number;
    /** For ports where a TCPRoute applies (tcp-route.ts); without it such ports splice as appProtocol tcp. */
    readonly client?: UpstreamClient;
  };
}

export class WaypointIngress {
  readonly #opts: IngressOptions;
  readonly #server: HboneServer;
  readonly #tunnels = new Set<Duplex>();
  readonly #tcpSplitter = new BackendSplitter();

  private constructor(opts: IngressOptions, server: HboneServer) {
    this.#opts = opts;
    this.#server = server;
  }

  static async start(opts: IngressOptions): Promise<WaypointIngress> {
    const onConnect: { fn: (req: HboneConnectRequest, tunnel: HboneTunnel) => void } = { fn: (_r, t) => t.reject(503) };
    const server = await HboneServer.listen({
      ...opts.listen,
      certificate: opts.certificate,
      onConnect: (req, tunnel) => onConnect.fn(req, tunnel),
      onPeerError: (e) => logHbonePeerError(opts.log, e, 'debug'),
    });
    const self = new WaypointIngress(opts, server);
    onConnect.fn = (req, tunnel) => self.#onConnect(req, tunnel);
    return self;
  }

  get address(): { ip: string; port: number } {
    return this.#server.address;
  }

  setCertificate(cert: WorkloadCertificate): void {
    this.#server.setCertificate(cert);
  }

  async close(graceful: boolean, deadlineMs: number): Promise<void> {
    await this.#server.close({ graceful, deadlineMs });
    for (const t of this.#tunnels) t.destroy();
  }

  #onConnect(req: HboneConnectRequest, tunnel: HboneTunnel): void {
    const parsed = parseHboneAuthority(req.authority);
    if (!parsed.ok) {
      tunnel.reject(400);
      return;
    }
    const state = this.#opts.state();
    const target = state.serviceByVip(parsed.value.ip, parsed.value.port);
    if (target === null) {
      this.#opts.log.info(
        { authority: req.authority },
        'waypoint: CONNECT to a destination this waypoint does not serve',
      );
      tunnel.reject(503);
      return;
    }
    const ctxBase = {
      target,
      sourceIdentity: req.peerIdentity,
      sourceIp: forwardedForIp(req.headers.forwarded) ?? req.peer.ip,
    };
    const stream = tunnel.accept();
    this.#tunnels.add(stream);
    stream.once('close', () => this.#tunnels.delete(stream));
    stream.on('error', () => stream.destroy());
    // A TCPRoute on this port (for this client's namespace) decides before any byte is read: server-first
    // protocols would wait forever for a sniff.
    const tcpRoute = state.routes.tcpForServicePort(
      target.service.namespace,
      serviceName(target.service),
      target.port.servicePort,
      req.peerIdentity.namespace,
    );
    const client = this.#opts.tcp.client;
    if (tcpRoute !== null && client !== undefined) {
      const deps = { client, splitter: this.#tcpSplitter, hbonePort: this.#opts.tcp.hbonePort, log: this.#opts.log };
      void serveTcpRoute(stream, tcpRoute, state, { ...deps, random: Math.random }, formatSpiffeId(req.peerIdentity));
      return;
    }
    if (target.port.appProtocol === 'tcp') {
      void this.#serveTcp(stream, target);
      return;
    }
    const protocol = target.port.appProtocol;
    const forcedH2 = protocol === 'http2' || protocol === 'grpc';
    // The first bytes decide HTTP/2 or HTTP/1.1; they may arrive in any number of chunks (at most the
    // 24 bytes of the preface are held back while they could still be one).
    const held: Buffer[] = [];
    // Until they arrive no HTTP server (and none of its timeouts) holds the tunnel: allow as long as for
    // a request's headers.
    const firstBytes = setTimeout(destroyStream, HEADERS_TIMEOUT_MS, stream);
    firstBytes.unref();
    stream.once('close', () => clearTimeout(firstBytes));
    const onData = (chunk: Buffer): void => {
      held.push(chunk);
      const head = held.length === 1 ? chunk : Buffer.concat(held);
      const version = forcedH2 ? 'http2' : sniffHttpVersion(head);
      if (version === 'more') return;
      clearTimeout(firstBytes);
      stream.off('data', onData);
      stream.off('end', onEarlyEnd);
      stream.pause();
      stream.unshift(head);
      if (version === 'http2') this.#serveHttp2(stream, { ...ctxBase, protocol: 'http2' });
      else this.#serveHttp1(stream, { ...ctxBase, protocol: 'http1' });
      stream.resume();
    };
    // The client ended inside a preface: no request to answer.
    const onEarlyEnd = (): void => {
      stream.destroy();
    };
    stream.on('data', onData);
    stream.once('end', onEarlyEnd);
  }

  #serveHttp1(stream: Duplex, ctx: DownstreamContext): void {
    const server = http.createServer(
      {
        maxHeaderSize: MAX_HEADER_BYTES,
        headersTimeout: HEADERS_TIMEOUT_MS,
        requestTimeout: 0,
        keepAlive: true,
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      },
      (req, res) => void this.#opts.pipeline.handle(req, res, ctx),
    );
    server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
      this.#opts.log.info({ code: err.code, error: err.message }, 'waypoint: malformed HTTP/1.1 request');
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
    server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
      void this.#opts.pipeline.handleUpgrade(req, socket, head, ctx);
    });
    server.emit('connection', stream);
  }

  #serveHttp2(stream: Duplex, ctx: DownstreamContext): void {
    const server = http2.createServer(
      { maxHeaderListPairs: 256, maxSessionMemory: 16 },
      (req, res) => void this.#opts.pipeline.handle(req, res, ctx),
    );
    server.on('sessionError', (err) => {
      this.#opts.log.info({ error: err.message }, 'waypoint: HTTP/2 session error');
    });
    server.on('session', (session) => {
      session.on('error', () => session.destroy());
      stream.once('close', () => session.destroy());
    });
    server.emit('connection', stream);
  }

  async #serveTcp(stream: Duplex, target: ServiceTarget): Promise<void> {
    const state = this.#opts.state();
    const picked = resolveServiceEndpoint(
      target.service,
      target.port.servicePort,
      state.view.endpointsOf(target.service),
      {
        random: Math.random,
        network: state.network,
      },
    );
    if (!picked.ok) {
      stream.destroy();
      return;
    }
    const { workload, ip, targetPort } = picked.value;
    try {
      const upstream = await this.#opts.tcp.pool.connect({
        source: await this.#opts.tcp.certificate(),
        dst: { ip, port: this.#opts.tcp.hbonePort },
        expectedIdentities: [workloadIdentity(workload)],
        authority: `${ip}:${targetPort}`,
        socketFactory: this.#opts.tcp.sockets,
      });
      stream.pipe(upstream).on('error', () => stream.destroy());
      upstream.pipe(stream).on('error', () => upstream.destroy());
      // A side closed after its clean end leaves the other to flush (destroying it lost the last bytes).
      stream.once('close', () => closeAfter(stream, upstream));
      upstream.once('close', () => closeAfter(upstream, stream));
    } catch (err) {
      this.#opts.log.info({ error: String(err) }, 'waypoint: TCP upstream failed');
      stream.destroy();
    }
  }
}

/** The client address from ztunnel's `forwarded: for="ip:port"` header, when well formed. */
export function forwardedForIp(forwarded: string | undefined): string | null {
  const m = forwarded === undefined ? null : /for="([^"]{1,64})"/.exec(forwarded);
  if (m === null) return null;
  const parsed = parseHboneAuthority(m[1] ?? '');
  return parsed.ok ? parsed.value.ip : null;
}

/** When `side` closed: `other` goes too, unless `side` ended cleanly (then `other` finishes on its own). */
function closeAfter(side: Duplex, other: Duplex): void {
  if (!side.readableEnded || side.errored !== null) other.destroy();
}

function destroyStream(stream: Duplex): void {
  stream.destroy();
}
