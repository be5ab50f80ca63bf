// Carries out the workload plans of one kube-controllers pass against the API: ReplicaSets (pods and
// status), Deployments (ReplicaSets, revision, status), DaemonSets (pods and status) and the garbage
// collector. Status is written only when it differs from the stored one (no write, no event, no loop).
// Conflicts and vanished objects are left to the next pass (ignoreConflict).
import { isJson, type Json, type KubeClient } from '../../kube/client.ts';
import { KubeError } from '../../kube/errors.ts';
import type { Logger } from '../../runtime/logger.ts';
import { k8sTime } from '../apiserver/objects.ts';
import { planDaemonSet } from './daemonset-plan.ts';
import { planDeployment, REVISION_ANNOTATION } from './deployment-plan.ts';
import { planGarbageCollection } from './garbage-collector.ts';
import { controllerOf, isDeleting, metaOf, nameOf, namespaceOf, specOf, statusOf, uidOf } from './objects.ts';
import { canonicalJson, podFromTemplate } from './pod-template.ts';
import { planReplicaSet } from './replicaset-plan.ts';

export interface ClusterView {
  readonly pods: readonly Json[];
  readonly nodes: readonly Json[];
  readonly deployments: readonly Json[];
  readonly replicaSets: readonly Json[];
  readonly daemonSets: readonly Json[];
}

const APPS = '/apis/apps/v1/namespaces';

export async function reconcileWorkloads(
  client: KubeClient,
  view: ClusterView,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const w = new Writer(client, log, signal);
  const orphans = planGarbageCollection(view, [...view.deployments, ...view.replicaSets, ...view.daemonSets]);
  for (const o of orphans) {
    const path =
      o.kind === 'Pod'
        ? `/api/v1/namespaces/${o.namespace}/pods/${o.name}`
        : `${APPS}/${o.namespace}/replicasets/${o.name}`;
    await w.send(
      'DELETE',
      path,
      { propagationPolicy: 'Background' },
      `garbage-collected ${o.kind} ${o.namespace}/${o.name}`,
    );
  }
  const gone = new Set(orphans.map((o) => `${o.kind}/${o.namespace}/${o.name}`));
  const replicaSets: Json[] = [];
  for (const rs of view.replicaSets) {
    if (gone.has(`ReplicaSet/${namespaceOf(rs)}/${nameOf(rs)}`) || isDeleting(rs)) continue;
    const plan = planReplicaSet(rs, view.pods);
    const template = isJson(specOf(rs).template) ? (specOf(rs).template as Json) : {};
    for (let i = 0; i < plan.create; i++) {
      await w.send(
        'POST',
        `/api/v1/namespaces/${namespaceOf(rs)}/pods`,
        podFromTemplate(rs, 'apps/v1', 'ReplicaSet', template),
      );
    }
    for (const name of plan.delete)
      await w.send('DELETE', `/api/v1/namespaces/${namespaceOf(rs)}/pods/${name}`, {}, `scaled down: pod ${name}`);
    await w.status(`${APPS}/${namespaceOf(rs)}/replicasets`, rs, plan.status);
    replicaSets.push({ ...rs, status: plan.status }); // the Deployment plan reads this pass's numbers
  }
  const now = k8sTime(new Date());
  for (const dep of view.deployments) {
    if (isDeleting(dep)) continue;
    const owned = replicaSets.filter((rs) => controllerOf(rs)?.uid === uidOf(dep));
    const plan = planDeployment(dep, owned, view.pods, now);
    const base = `${APPS}/${namespaceOf(dep)}`;
    if (plan.create !== null)
      await w.send('POST', `${base}/replicasets`, plan.create, `created ReplicaSet ${nameOf(plan.create)}`);
    for (const s of plan.scale) {
      const patch = {
        metadata: s.revision === undefined ? {} : { annotations: { [REVISION_ANNOTATION]: s.revision } },
        spec: { replicas: s.replicas },
      };
      await w.send(
        'PATCH',
        `${base}/replicasets/${s.name}`,
        patch,
        `scaled ReplicaSet ${s.name} to ${s.replicas}`,
        'application/merge-patch+json',
      );
    }
    const annotations = isJson(metaOf(dep).annotations) ? (metaOf(dep).annotations as Json) : {};
    if (annotations[REVISION_ANNOTATION] !== plan.revision) {
      const patch = { metadata: { annotations: { [REVISION_ANNOTATION]: plan.revision } } };
      await w.send('PATCH', `${base}/deployments/${nameOf(dep)}`, patch, undefined, 'application/merge-patch+json');
    }
    await w.status(`${base}/deployments`, dep, plan.status);
  }
  for (const ds of view.daemonSets) {
    if (isDeleting(ds)) continue;
    const plan = planDaemonSet(ds, view.nodes, view.pods);
    for (const pod of plan.create) await w.send('POST', `/api/v1/namespaces/${namespaceOf(ds)}/pods`, pod);
    for (const name of plan.delete)
      await w.send(
        'DELETE',
        `/api/v1/namespaces/${namespaceOf(ds)}/pods/${name}`,
        {},
        `DaemonSet ${nameOf(ds)}: deleted pod ${name}`,
      );
    await w.status(`${APPS}/${namespaceOf(ds)}/daemonsets`, ds, plan.status);
  }
}

class Writer {
  readonly #client: KubeClient;
  readonly #log: Logger;
  readonly #signal: AbortSignal;
  constructor(client: KubeClient, log: Logger, signal: AbortSignal) {
    this.#client = client;
    this.#log = log;
    this.#signal = signal;
  }

  async send(
    method: 'POST' | 'DELETE' | 'PATCH',
    path: string,
    json: unknown,
    what?: string,
    contentType?: string,
  ): Promise<void> {
    try {
      await this.#client.request(
        method,
        path,
        { json, ...(contentType === undefined ? {} : { contentType }) },
        this.#signal,
      );
      if (what !== undefined) this.#log.info({ path }, what);
    } catch (err) {
      if (err instanceof KubeError && (err.status === 404 || err.status === 409)) return; // the next pass decides again
      throw err;
    }
  }

  /** PUT /status when `status` differs from the object's. */
  async status(collection: string, o: Json, status: Json): Promise<void> {
    if (canonicalJson(statusOf(o)) === canonicalJson(status)) return;
    const meta = { ...metaOf(o) };
    delete meta.resourceVersion; // status is ours alone: last writer wins
    const body = { ...o, metadata: meta, status };
    try {
      await this.#client.request('PUT', `${collection}/${nameOf(o)}/status`, { json: body }, this.#signal);
    } catch (err) {
      if (err instanceof KubeError && (err.status === 404 || err.status === 409)) return;
      throw err;
    }
  }
}
