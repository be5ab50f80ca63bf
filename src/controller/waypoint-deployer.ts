// Creates and updates each ferry-waypoint Gateway's objects from the waypoint template (the leader does
// this; the Gateway owns them, so the API's garbage collector deletes them with it). Rules, in the order
// they apply to one object: absent → created; present without Ferry's managed-by label → left alone
// (FERRY_CONTROLLER_NOT_MANAGED, once per object: someone else owns it); present with the template hash
// Ferry would write → nothing; else replaced with the template's version, keeping what others own:
// a Deployment's spec.replicas (an HPA or `kubectl scale` sets it after creation), a Service's allocated
// cluster IPs, and labels/annotations added by others. What is known to be current is remembered, so a
// translation that changes nothing costs no API request; reset() forgets it (a new leader, a resync).
import type { Json, KubeClient } from '../kube/client.ts';
import { isJson } from '../kube/client.ts';
import { KubeError } from '../kube/errors.ts';
import type { Logger } from '../runtime/logger.ts';
import {
  type FilledObject,
  fillWaypointTemplate,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  TEMPLATE_HASH_ANNOTATION,
  TEMPLATE_KINDS,
  type WaypointGateway,
  type WaypointTemplate,
} from './waypoint-template.ts';

export interface WaypointDeployerOptions {
  readonly client: KubeClient;
  readonly template: WaypointTemplate;
  readonly log: Logger;
}

export type DeployOutcome = 'created' | 'updated' | 'unchanged' | 'not-managed' | 'conflict';

export class WaypointDeployer {
  readonly #opts: WaypointDeployerOptions;
  /** `kind/ns/name` → template hash known to be stored (or the object known to be someone else's). */
  readonly #current = new Map<string, string>();

  constructor(opts: WaypointDeployerOptions) {
    this.#opts = opts;
  }

  /** Forgets what is known to be stored: the next sync reads every object again. */
  reset(): void {
    this.#current.clear();
  }

  /** Brings every Gateway's objects up to date; a failure of one object is logged and retried next time. */
  async sync(gateways: readonly WaypointGateway[]): Promise<void> {
    const wanted = new Set<string>();
    for (const gw of gateways) {
      for (const f of fillWaypointTemplate(this.#opts.template, gw)) {
        const key = `${f.kind}/${f.namespace}/${f.name}`;
        wanted.add(key);
        if (this.#current.get(key) === f.hash) continue;
        try {
          const outcome = await this.#apply(f);
          if (outcome !== 'conflict') this.#current.set(key, f.hash);
          if (outcome === 'created' || outcome === 'updated') {
            this.#opts.log.info({ object: key, gateway: `${gw.namespace}/${gw.name}` }, `waypoint object ${outcome}`);
          }
        } catch (err) {
          this.#opts.log.warn({ object: key, code: (err as KubeError).code, err }, 'waypoint object not written');
        }
      }
    }
    // A Gateway that is gone took its objects (garbage collection); a new one by that name starts afresh.
    for (const key of this.#current.keys()) if (!wanted.has(key)) this.#current.delete(key);
  }

  async #apply(f: FilledObject): Promise<DeployOutcome> {
    const { client } = this.#opts;
    const collection = collectionPath(f);
    const stored = await getOrNull(client, `${collection}/${encodeURIComponent(f.name)}`);
    if (stored === null) {
      return client.request('POST', collection, { json: f.object }).then(
        () => 'created' as const,
        (err: unknown) => conflictOr(err),
      );
    }
    const meta = isJson(stored.metadata) ? stored.metadata : {};
    const labels = isJson(meta.labels) ? meta.labels : {};
    if (labels[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) {
      this.#opts.log.warn(
        { code: 'FERRY_CONTROLLER_NOT_MANAGED', object: `${f.kind}/${f.namespace}/${f.name}` },
        `exists without the label ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}: left alone`,
      );
      return 'not-managed';
    }
    const annotations = isJson(meta.annotations) ? meta.annotations : {};
    if (annotations[TEMPLATE_HASH_ANNOTATION] === f.hash) return 'unchanged';
    return client.request('PUT', `${collection}/${encodeURIComponent(f.name)}`, { json: updated(f, stored) }).then(
      () => 'updated' as const,
      (err: unknown) => conflictOr(err),
    );
  }
}

/** The template's object as a replacement of `stored`, keeping what belongs to others. */
export function updated(f: FilledObject, stored: Json): Json {
  const meta = isJson(stored.metadata) ? stored.metadata : {};
  const want = f.object.metadata as Json;
  const merged = {
    ...f.object,
    metadata: {
      ...meta,
      labels: { ...(isJson(meta.labels) ? meta.labels : {}), ...(want.labels as Json) },
      annotations: { ...(isJson(meta.annotations) ? meta.annotations : {}), ...(want.annotations as Json) },
      ownerReferences: want.ownerReferences,
    },
  };
  const spec = isJson(f.object.spec) ? f.object.spec : {};
  const storedSpec = isJson(stored.spec) ? stored.spec : {};
  if (f.kind === 'apps/v1/Deployment' && storedSpec.replicas !== undefined) {
    return { ...merged, spec: { ...spec, replicas: storedSpec.replicas } };
  }
  if (f.kind === 'v1/Service') {
    const allocated = Object.fromEntries(
      ['clusterIP', 'clusterIPs', 'ipFamilies', 'ipFamilyPolicy'].flatMap((k) =>
        storedSpec[k] === undefined ? [] : [[k, storedSpec[k]]],
      ),
    );
    return { ...merged, spec: { ...spec, ...allocated } };
  }
  return merged;
}

function collectionPath(f: FilledObject): string {
  const [group, version] = f.kind.startsWith('apps/') ? ['apps', 'v1'] : ['', 'v1'];
  const base = group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
  return `${base}/namespaces/${encodeURIComponent(f.namespace)}/${TEMPLATE_KINDS[f.kind]}`;
}

async function getOrNull(client: KubeClient, path: string): Promise<Json | null> {
  try {
    return await client.get(path);
  } catch (err) {
    if (err instanceof KubeError && err.status === 404) return null;
    throw err;
  }
}

/** A write that lost a race (409: created or changed meanwhile) is redone by the next sync. */
function conflictOr(err: unknown): 'conflict' {
  if (err instanceof KubeError && err.status === 409) return 'conflict';
  throw err;
}
