// What every proxy path of one ztunnel shares (ztunnel's ProxyInputs): state, identity, telemetry, drain.
// Passed explicitly; no module-level singletons.
import type { SpiffeId } from '../identity/spiffe-id.ts';
import type { WorkloadCertificate } from '../identity/workload-certificate.ts';
import type { DrainController } from '../runtime/drain.ts';
import type { Logger } from '../runtime/logger.ts';
import type { AccessLog } from './access-log.ts';
import type { ConnectionTracker } from './connections.ts';
import type { HboneClientPool } from './hbone/pool.ts';
import type { MeshStore } from './store/mesh-store.ts';

/** Certificates for local identities (src/identity/cert-manager.ts implements it). */
export interface CertificateProvider {
  getCertificate(id: SpiffeId): Promise<WorkloadCertificate>;
}

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
  /** Our own proxy ports: never a valid target (loop guard). */
  readonly selfPorts: ReadonlySet<number>;
  /** HBONE port of peers (15008). */
  readonly hbonePort: number;
  readonly upstreamConnectTimeoutMs: number;
  /** Graceful close deadline for listeners and pooled connections. */
  readonly drainDeadlineMs: number;
}
