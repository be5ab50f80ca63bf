// The controller's core loop: a source's cluster state → placement (who runs where, which VIP) → pure
// translation → publish to every ztunnel over delta xDS. It also answers the CA's node-bound question
// ("does a pod with this identity run on that node?") from the last translation. Sources, placement and
// the xDS server are injected, so the same loop serves the local cluster and (later) Kubernetes.
import { type SpiffeId, sameSpiffeId } from '../identity/spiffe-id.ts';
import { workloadIdentity } from '../mesh/mesh-view.ts';
import type { Logger } from '../runtime/logger.ts';
import { type MemoryReleaseOptions, MemoryReleaser } from './memory-release.ts';
import { type ClusterState, formatDiagnostic, type MeshSource } from './sources/types.ts';
import { listPods, type TranslateInputs, translateCluster } from './translate/translate.ts';
import type { PodInstance, TranslateResult, TranslateSettings } from './translate/types.ts';

/** Decides where pods run and which VIPs services get; stable for objects that persist across changes. */
export interface PlacementProvider {
  place(pods: readonly PodInstance[], state: ClusterState): TranslateInputs | Promise<TranslateInputs>;
}

/** Where translated config goes (the xDS server's publish). */
export interface ConfigPublisher {
  publish(config: TranslateResult['config'], result?: TranslateResult): void;
}

export interface MeshControllerOptions {
  readonly source: MeshSource;
  readonly placement: PlacementProvider;
  readonly publisher: ConfigPublisher;
  readonly settings?: Partial<TranslateSettings>;
  readonly log: Logger;
  /** Called after each publish (the local cluster creates pods and enrolls them from it). */
  readonly onTranslated?: (result: TranslateResult, state: ClusterState) => void | Promise<void>;
  /**
   * Hand reserved heap back once changes are quiet (memory-release.ts): default on; null turns it off.
   */
  readonly memoryRelease?: MemoryReleaseOptions | null;
}

export class MeshController {
  readonly #opts: MeshControllerOptions;
  #current: TranslateResult | null = null;
  #revision = 0;
  // Changes are applied one at a time, in order: a slow placement never lets an older state win.
  #queue: Promise<void> = Promise.resolve();
  readonly #memory: MemoryReleaser | null;

  constructor(opts: MeshControllerOptions) {
    this.#opts = opts;
    this.#memory =
      opts.memoryRelease === null
        ? null
        : new MemoryReleaser({
            ...opts.memoryRelease,
            onReleased: (before, after, ms) => {
              opts.log.info(
                {
                  heapTotalMb: [mib(before.totalBytes), mib(after.totalBytes)],
                  heapUsedMb: [mib(before.usedBytes), mib(after.usedBytes)],
                  ms: Math.round(ms),
                },
                'reserved heap released after a large change',
              );
              opts.memoryRelease?.onReleased?.(before, after, ms);
            },
          });
  }

  get current(): TranslateResult | null {
    return this.#current;
  }

  /** How many states have been published. */
  get revision(): number {
    return this.#revision;
  }

  async start(): Promise<void> {
    await this.#opts.source.start((state) => {
      this.#queue = this.#queue
        .then(() => this.#apply(state))
        .catch((err: unknown) => {
          this.#opts.log.error({ error: String(err) }, 'applying cluster state failed; last published state kept');
        });
    });
    await this.#queue;
  }

  /** Resolves once every change received so far has been published. */
  settled(): Promise<void> {
    return this.#queue;
  }

  /** CA authorization: may `node` obtain `identity`? Only if a workload with it is placed there. */
  identityOnNode(node: string, identity: SpiffeId): boolean {
    const config = this.#current?.config;
    if (config === undefined) return false;
    return config.workloads.some((w) => w.node === node && sameSpiffeId(workloadIdentity(w), identity));
  }

  async close(): Promise<void> {
    this.#memory?.close();
    await this.#opts.source.close();
    await this.#queue;
  }

  async #apply(state: ClusterState): Promise<void> {
    const pods = listPods(state, this.#opts.settings);
    const inputs = await this.#opts.placement.place(pods, state);
    const result = translateCluster(state, inputs, this.#opts.settings);
    for (const d of result.diagnostics) {
      const line = formatDiagnostic(d);
      if (d.severity === 'error') this.#opts.log.error({ code: d.code, object: d.object }, line);
      else this.#opts.log.warn({ code: d.code, object: d.object }, line);
    }
    this.#opts.publisher.publish(result.config, result);
    this.#current = result;
    this.#revision++;
    this.#opts.log.info(
      {
        revision: this.#revision,
        workloads: result.config.workloads.length,
        services: result.config.services.length,
        policies: result.config.policies.length,
        waypoints: result.waypoints.length,
      },
      'mesh state published',
    );
    await this.#opts.onTranslated?.(result, state);
    this.#memory?.changed();
  }
}

const mib = (bytes: number): number => Math.round(bytes / 1024 / 102.4) / 10;
