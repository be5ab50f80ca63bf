// The waypoint's HBONE listener (docs/architecture.md "How a connection flows through the code" step 6, §5.1): a CONNECT whose authority is `VIP:port` of a
// Service this waypoint serves is accepted (200) and its byte stream is served as HTTP — HTTP/2 when the
// client starts with the h2 preface (h2c prior knowledge), HTTP/1.1 otherwise — or, for an appProtocol
// `tcp` port, spliced whole to one endpoint, and where a TCPRoute applies, to one weighted backend
// (tcp-route.ts). Unknown destinations get 503, malformed authorities 400.
// Malformed HTTP costs the client its tunnel only (400 / stream reset); everyone else keeps being served.
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
import { serveHttpStream } from './http-downstream.ts';
import type { RequestPipeline } from './pipeline.ts';
import { type ServiceTarget, serviceName, type WaypointState } from './state.ts';
import { serveTcpRoute } from './tcp-route.ts';
import type { UpstreamClient } from './upstream/client.ts';

export { sniffHttpVersion } from './http-downstream.ts';

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
  /** Aborted when the waypoint starts draining (close): its HTTP connections wind down. */
  readonly #closing = new AbortController();
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
    // Clients move to new connections before the waypoint goes: idle HTTP/1.1 keep-alive connections
    // close, later responses say `Connection: close`, HTTP/2 gets GOAWAY (a pod torn down with its
    // connections still open leaves them dead without a FIN, and clients would wait for their timeout).
    this.#closing.abort();
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
    serveHttpStream(stream, ctxBase, {
      pipeline: this.#opts.pipeline,
      log: this.#opts.log,
      role: 'waypoint',
      forcedH2: protocol === 'http2' || protocol === 'grpc',
      closing: this.#closing.signal,
    });
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
