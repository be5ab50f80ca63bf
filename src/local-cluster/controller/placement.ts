// Placement for the local cluster: pods run where `ferry up` created them (the runtime's journal: pod key →
// IP, node) and Services get VIPs from the service CIDR, persisted in vips.json so a restarted controller
// hands out the same VIPs (clients and ztunnels keep working across a controller restart). A pod the
// manifests ask for but the runtime never created (added later with `ferry apply`) is not placed: it gets
// no Workload and is listed by `pendingPods` ("needs ferry down/up").
import { join } from 'node:path';
import type { PlacementProvider } from '../../controller/controller.ts';
import type { ClusterState } from '../../controller/sources/types.ts';
import type { TranslateInputs } from '../../controller/translate/translate.ts';
import type { PodInstance, PodPlacement } from '../../controller/translate/types.ts';
import type { Logger } from '../../runtime/logger.ts';
import { ClusterError } from '../errors.ts';
import { nodeName } from '../layout.ts';
import { loadState, type PodRecord, podsOf } from '../state.ts';
import { ServiceVipAllocator } from '../vips.ts';
import { readJsonMap, VIPS_FILE, writeJsonMap } from './mesh-files.ts';

/** Pure: the placement of the requested pods that the runtime created; the rest are pending. */
export function placePods(
  pods: readonly PodInstance[],
  created: readonly PodRecord[],
): { placement: Map<string, PodPlacement>; pending: string[] } {
  const byKey = new Map(created.map((p) => [`${p.namespace}/${p.name}`, p]));
  const placement = new Map<string, PodPlacement>();
  const pending: string[] = [];
  for (const pod of pods) {
    const rec = byKey.get(pod.key);
    if (rec === undefined) pending.push(pod.key);
    else placement.set(pod.key, { ip: rec.ip, node: nodeName(rec.node) });
  }
  return { placement, pending };
}

export class LocalPlacement implements PlacementProvider {
  readonly #stateDir: string;
  readonly #file: string;
  readonly #log: Logger;
  readonly #vips: Map<string, string>;
  readonly #allocator = new ServiceVipAllocator();
  #pending: readonly string[] = [];

  private constructor(stateDir: string, vips: Map<string, string>, log: Logger) {
    this.#stateDir = stateDir;
    this.#file = join(stateDir, VIPS_FILE);
    this.#vips = vips;
    this.#log = log;
    for (const [key, ip] of vips) this.#allocator.reserve(key, ip);
  }

  /** Loads the VIPs recorded by an earlier controller of this cluster. */
  static async open(stateDir: string, log: Logger): Promise<LocalPlacement> {
    const vips = await readJsonMap(join(stateDir, VIPS_FILE), (x): x is string => typeof x === 'string');
    return new LocalPlacement(stateDir, vips, log);
  }

  /** Pods of the manifests the runtime has not created (`ferry apply` of new pods: needs down/up). */
  get pendingPods(): readonly string[] {
    return this.#pending;
  }

  /** Service key → VIP, as last placed. */
  get vips(): ReadonlyMap<string, string> {
    return this.#vips;
  }

  async place(pods: readonly PodInstance[], state: ClusterState): Promise<TranslateInputs> {
    const { placement, pending } = placePods(pods, podsOf(loadState(this.#stateDir)));
    if (pending.length > 0 && pending.join() !== this.#pending.join()) {
      this.#log.warn(
        { pods: pending },
        'pods in the manifests that the local cluster has not created: run ferry down/up',
      );
    }
    this.#pending = pending;
    const changed = this.#allocate(state);
    if (changed) await writeJsonMap(this.#file, this.#vips);
    return { placement, vips: new Map(this.#vips) };
  }

  /** Keeps VIPs of existing services, allocates new ones, releases deleted ones. Returns whether anything changed. */
  #allocate(state: ClusterState): boolean {
    let changed = false;
    const wanted = new Set<string>();
    for (const svc of state.services) {
      const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
      const explicit = svc.spec.clusterIP;
      if (explicit === 'None' || svc.spec.type === 'ExternalName') continue;
      wanted.add(key);
      try {
        if (explicit !== null && this.#vips.get(key) !== explicit) this.#allocator.reserve(key, explicit);
        const ip = explicit ?? this.#allocator.allocate(key);
        if (this.#vips.get(key) !== ip) {
          this.#vips.set(key, ip);
          changed = true;
        }
      } catch (err) {
        if (!(err instanceof ClusterError)) throw err;
        this.#log.warn({ service: key, code: err.code }, err.message); // the service keeps no VIP
      }
    }
    for (const key of [...this.#vips.keys()]) {
      if (wanted.has(key)) continue;
      this.#allocator.release(key);
      this.#vips.delete(key);
      changed = true;
    }
    return changed;
  }
}
