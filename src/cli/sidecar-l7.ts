// L7 in the sidecar (docs/architecture.md "Sidecar mode", "L7 in the sidecar"): the pod's outbound HTTP to a
// Service port that HTTPRoutes bind to (parentRef the Service, producer or consumer routes, as in ambient)
// is served here, client-side, as an Istio sidecar applies a VirtualService: the waypoint's own request
// pipeline (Gateway API matching, weighted backends, filters, retries, timeouts: src/waypoint/pipeline.ts)
// over a compiled state of the sidecar's xDS config, then each request to the chosen pod over HBONE with
// the pod's own certificate. Composed here because src/ztunnel may not import src/waypoint; the ztunnel
// only sees the OutboundL7Handler seam (src/ztunnel/outbound-l7.ts). No L7 authorization outbound: policies
// are the server side's to enforce.
import { once } from 'node:events';
import type net from 'node:net';
import { HboneClientPool } from '../hbone/pool.ts';
import type { SocketFactory } from '../hbone/socket-factory.ts';
import type { CertificateProvider } from '../identity/cert-manager.ts';
import type { IpPort } from '../mesh/ip-addr.ts';
import { workloadIdentity } from '../mesh/mesh-view.ts';
import type { Workload } from '../mesh/types.ts';
import { waypointConfigOf } from '../waypoint/config-xds-source.ts';
import { serveHttpStream } from '../waypoint/http-downstream.ts';
import { WaypointMetrics } from '../waypoint/metrics.ts';
import { RequestPipeline } from '../waypoint/pipeline.ts';
import { buildWaypointState, type ServiceTarget, serviceName, type WaypointState } from '../waypoint/state.ts';
import { UpstreamClient } from '../waypoint/upstream/client.ts';
import type { XdsHeldState } from '../xds/client-state.ts';
import type {
  OutboundL7Connection,
  OutboundL7Env,
  OutboundL7Factory,
  OutboundL7Handler,
} from '../ztunnel/outbound-l7.ts';

export interface SidecarL7Options {
  /** The served pod's workload uid: only its connections are claimed. */
  readonly uid: string;
  readonly certificates: CertificateProvider;
}

/** The sidecar's L7 handler factory, for `startSidecar(…, { outboundL7 })`. */
export function sidecarL7(opts: SidecarL7Options): OutboundL7Factory {
  return (env) => new SidecarL7(opts, env);
}

/**
 * The waypoint state compiled for a client-side proxy: routes bound to Services only (a Gateway named ''
 * never exists, so waypoint-bound routes never attach), no L7 policies (enforced where the request lands),
 * and every Service in the mesh as a possible target, waypoint or not (Istio sidecars apply a Service's
 * routes themselves whether or not it has a waypoint).
 */
export function buildSidecarState(held: XdsHeldState, network: string, version: number): WaypointState {
  const base = buildWaypointState(
    waypointConfigOf(held),
    { namespace: '', name: '' },
    { clusterDomain: 'cluster.local', network },
    version,
  );
  return {
    ...base,
    policies: Object.freeze([]),
    serviceByVip(ip: string, port: number): ServiceTarget | null {
      const service = base.view.serviceByVip(network, ip) ?? base.view.serviceByVip('', ip);
      const sp = service?.ports.find((p) => p.servicePort === port);
      return service === undefined || sp === undefined ? null : { service, port: sp };
    },
  };
}

/**
 * Whether the sidecar serving `servedUid` takes `source`'s connection to `dst` as HTTP: `dst` is a Service
 * VIP:port and HTTPRoutes (or GRPCRoutes) bound to that Service apply to a client of `source`'s namespace.
 * Anything else (no route, a TCPRoute, a pod IP, outside the mesh) stays L4. Pure.
 */
export function sidecarClaims(state: WaypointState, servedUid: string, source: Workload, dst: IpPort): boolean {
  if (source.uid !== servedUid) return false;
  const target = state.serviceByVip(dst.ip, dst.port);
  if (target === null) return false;
  const svc = target.service;
  // The client's namespace picks consumer routes over producer routes (GEP-1294), as at a waypoint.
  return state.routes.forServicePort(svc.namespace, serviceName(svc), dst.port, source.namespace) !== null;
}

class SidecarL7 implements OutboundL7Handler {
  readonly #opts: SidecarL7Options;
  readonly #env: OutboundL7Env;
  readonly #pool = new HboneClientPool({});
  readonly #pipeline: RequestPipeline;
  readonly #client: UpstreamClient;
  /** Where the pod's sockets are made; set from each connection (the pod netns of the current enrollment). */
  #sockets: SocketFactory | null = null;
  #source: Workload | null = null;
  #version = 0;
  #state: WaypointState;

  constructor(opts: SidecarL7Options, env: OutboundL7Env) {
    this.#opts = opts;
    this.#env = env;
    this.#state = buildSidecarState({ addresses: new Map(), authorizations: new Map(), l7: new Map() }, env.network, 0);
    const sockets: SocketFactory = {
      connect: (target, o) => {
        if (this.#sockets === null) throw new Error('sidecar L7: no pod socket factory yet');
        return this.#sockets.connect(target, o);
      },
    };
    this.#client = new UpstreamClient({
      pool: this.#pool,
      certificate: () => {
        const source = this.#source;
        if (source === null) return Promise.reject(new Error('sidecar L7: no source workload yet'));
        return opts.certificates.getCertificate(workloadIdentity(source));
      },
      sockets,
      http1: 'undici',
    });
    this.#pipeline = new RequestPipeline({
      state: () => this.#state,
      client: this.#client,
      metrics: new WaypointMetrics(),
      log: env.logger,
      hbonePort: env.hbonePort,
      // A sidecar logs its requests as the ztunnel logs its connections (on); the waypoint's default is off.
      accessLog: true,
    });
  }

  onConfig(held: XdsHeldState): void {
    try {
      this.#state = buildSidecarState(held, this.#env.network, ++this.#version);
    } catch (err) {
      this.#env.logger.error({ error: String(err) }, 'sidecar L7: config not applied; the last one stays');
    }
  }

  claims(source: Workload, dst: IpPort): boolean {
    return sidecarClaims(this.#state, this.#opts.uid, source, dst);
  }

  async serve(socket: net.Socket, conn: OutboundL7Connection): Promise<void> {
    const target = this.#state.serviceByVip(conn.dst.ip, conn.dst.port);
    if (target === null || socket.destroyed || conn.signal.aborted) {
      socket.destroy();
      return;
    }
    this.#source = conn.source;
    this.#sockets = conn.sockets;
    socket.setNoDelay(true);
    const closed = once(socket, 'close').catch(() => {});
    const onForce = (): void => {
      socket.destroy();
    };
    conn.signal.addEventListener('abort', onForce, { once: true });
    try {
      serveHttpStream(
        socket,
        { target, sourceIdentity: workloadIdentity(conn.source), sourceIp: conn.src.ip },
        {
          pipeline: this.#pipeline,
          log: this.#env.logger,
          role: 'sidecar',
          forcedH2: target.port.appProtocol === 'http2' || target.port.appProtocol === 'grpc',
          closing: conn.drain,
        },
      );
      await closed;
    } finally {
      conn.signal.removeEventListener('abort', onForce);
    }
  }

  async close(): Promise<void> {
    this.#client.close();
    await this.#pool.close(0).catch(() => {});
    this.#pool.destroy();
  }
}
