// What every proxy path of one ztunnel shares (ztunnel's ProxyInputs): state, identity, telemetry, drain.
// Passed explicitly; no module-level singletons. `sockets` is the OS seam (ztunnel's SocketFactory): where
// a connection made on behalf of a local workload is created (the host netns, or that pod's netns).

import type { HboneClientPool } from '../hbone/pool.ts';
import type { SocketFactories } from '../hbone/socket-factory.ts';
import type { CertificateProvider } from '../identity/cert-manager.ts';
import type { MeshStore } from '../mesh/mesh-store.ts';
import type { OutlierDetector } from '../mesh/outlier-detection.ts';
import type { ConnectionLimiter } from '../runtime/connection-limiter.ts';
import type { DrainController } from '../runtime/drain.ts';
import type { Logger } from '../runtime/logger.ts';
import type { AccessLog } from './access-log.ts';
import type { ConnectionTracker } from './connections.ts';
import type { OutboundL7Handler } from './outbound-l7.ts';

export interface ProxyContext {
  readonly node: string;
  readonly network: string;
  readonly store: MeshStore;
  readonly certificates: CertificateProvider;
  readonly pool: HboneClientPool;
  readonly accessLog: AccessLog;
  readonly connections: ConnectionTracker;
  readonly drain: DrainController;
  readonly logger: Logger;
  /** Source address of connections to local apps (127.0.0.6, Istio's in-pod convention). */
  readonly inboundSourceAddress: string;
  /** Shared by every HBONE listener (15008) of this ztunnel: connection caps and TLS handshake timeout. */
  readonly hboneAdmission?: { readonly limiter: ConnectionLimiter; readonly handshakeTimeoutMs: number };
  /** Our own proxy ports: never a valid target (loop guard). */
  readonly selfPorts: ReadonlySet<number>;
  /** HBONE port of peers (15008). */
  readonly hbonePort: number;
  readonly upstreamConnectTimeoutMs: number;
  /** Graceful close deadline for listeners and pooled connections. */
  readonly drainDeadlineMs: number;
  /** Where upstream sockets are created (host netns in loopback mode, pod netns for enrolled pods). */
  readonly sockets: SocketFactories;
  /** Endpoints whose connects failed, left out of service load balancing for a while. */
  readonly outliers: OutlierDetector;
  /** Sidecar mode with L7: takes captured connections to Service ports with HTTP routes (outbound-l7.ts). */
  readonly outboundL7?: OutboundL7Handler | null;
}
