// The objects the Lease holder writes besides status: the trust-bundle ConfigMaps and the waypoint
// Deployments/Services/ServiceAccounts. One round at a time, from the latest cluster state; a change
// during a round runs one more round after it (never two at once, never a stale state last). A new
// leader, and every `resyncMs`, forgets what it knew and reads each object again (the controller watches
// no Deployments, so an object deleted by hand is remade at the latest then).
import type { Logger } from '../runtime/logger.ts';
import type { RootCertPublisher } from './root-cert-configmaps.ts';
import type { ClusterState } from './sources/types.ts';
import { WAYPOINT_GATEWAY_CLASS } from './translate/waypoints.ts';
import type { WaypointDeployer } from './waypoint-deployer.ts';
import type { WaypointGateway } from './waypoint-template.ts';

export interface LeaderWritesOptions {
  readonly rootCerts: RootCertPublisher | null;
  readonly waypoints: WaypointDeployer | null;
  /** The controller's own namespace: it always gets the trust bundle. */
  readonly ownNamespace: string;
  readonly log: Logger;
  /** Default 5 minutes. */
  readonly resyncMs?: number;
}

const DEFAULT_RESYNC_MS = 5 * 60_000;

export class LeaderWrites {
  readonly #opts: LeaderWritesOptions;
  #gateways: readonly WaypointGateway[] | null = null;
  #leading = false;
  #round: Promise<void> = Promise.resolve();
  #running = false;
  #again = false;
  readonly #timer: NodeJS.Timeout;

  constructor(opts: LeaderWritesOptions) {
    this.#opts = opts;
    this.#timer = setInterval(resync, opts.resyncMs ?? DEFAULT_RESYNC_MS, this);
    this.#timer.unref();
  }

  /** The latest cluster state (after every translation). */
  update(state: ClusterState): void {
    this.#gateways = waypointGateways(state);
    this.#schedule();
  }

  /** The Lease was gained or lost. */
  setLeading(leading: boolean): void {
    this.#leading = leading;
    if (leading) this.forget();
    this.#schedule();
  }

  /** Reads every object again at the next round, and starts one. */
  forget(): void {
    this.#opts.rootCerts?.reset();
    this.#opts.waypoints?.reset();
    this.#schedule();
  }

  /** Resolves when no round is running or due. */
  async settled(): Promise<void> {
    while (this.#running) await this.#round;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#leading = false;
  }

  #schedule(): void {
    if (!this.#leading || this.#gateways === null) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    this.#round = this.#run();
  }

  async #run(): Promise<void> {
    try {
      do {
        this.#again = false;
        const gateways = this.#gateways ?? [];
        const namespaces = [this.#opts.ownNamespace, ...gateways.map((g) => g.namespace)];
        // The bundle first: the waypoint pods mount it.
        await this.#opts.rootCerts?.sync(namespaces);
        await this.#opts.waypoints?.sync(gateways);
      } while (this.#again && this.#leading);
    } catch (err) {
      this.#opts.log.error({ err }, 'leader writes failed');
    } finally {
      this.#running = false;
    }
  }
}

function resync(self: LeaderWrites): void {
  self.forget();
}

function waypointGateways(state: ClusterState): WaypointGateway[] {
  return state.gateways.flatMap((g) =>
    g.spec.gatewayClassName === WAYPOINT_GATEWAY_CLASS && g.metadata.uid !== undefined
      ? [{ namespace: g.metadata.namespace, name: g.metadata.name, uid: g.metadata.uid }]
      : [],
  );
}
