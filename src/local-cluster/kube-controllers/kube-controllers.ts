// `ferry kube-controllers`: the control loops of a bare local cluster in one process (docs/architecture.md
// "Bare cluster"): scheduler, Deployment, ReplicaSet and DaemonSet controllers and the garbage collector.
// One process because they share one view of the cluster and are cheap; one pass runs them all.
// Level-triggered without caches that can lag: informers only wake the loop, and each pass lists the
// objects fresh from the API (linearizable), plans with pure functions, and writes the differences. So a
// pass never acts twice on what it did in the previous one (no "expectations" bookkeeping needed).
import type { KubeConfig } from '@kubernetes/client-node';
import { isJson, type Json, type KubeClient } from '../../kube/client.ts';
import { KubeError } from '../../kube/errors.ts';
import { KubeInformer } from '../../kube/informer.ts';
import type { Logger } from '../../runtime/logger.ts';
import { k8sTime } from '../apiserver/objects.ts';
import { nameOf, namespaceOf } from './objects.ts';
import { planScheduling } from './scheduler.ts';
import { type ClusterView, reconcileWorkloads } from './workloads.ts';

const PASS_INTERVAL_MS = 2_000;
/** Coalesces a burst of events (a rollout writes many objects) into one pass. */
const SETTLE_MS = 20;

export const WATCHED_PATHS = [
  '/api/v1/pods',
  '/api/v1/nodes',
  '/apis/apps/v1/deployments',
  '/apis/apps/v1/replicasets',
  '/apis/apps/v1/daemonsets',
] as const;

export interface KubeControllersOptions {
  readonly client: KubeClient;
  readonly config: KubeConfig;
  readonly log: Logger;
  readonly signal: AbortSignal;
}

export async function runKubeControllers(opts: KubeControllersOptions): Promise<void> {
  const { log, signal } = opts;
  let wake: PromiseWithResolvers<void> = Promise.withResolvers();
  const poke = (): void => wake.resolve();
  const informers = WATCHED_PATHS.map(
    (path) =>
      new KubeInformer({
        config: opts.config,
        client: opts.client,
        path,
        log,
        handlers: { upsert: poke, remove: poke },
      }),
  );
  await Promise.all(informers.map((i) => i.start(signal)));
  log.info({}, 'kube-controllers running');
  try {
    while (!signal.aborted) {
      wake = Promise.withResolvers();
      await pass(opts).catch((err: unknown) =>
        log.error({ error: String((err as Error)?.stack ?? err) }, 'pass failed'),
      );
      const timer = setTimeout(poke, PASS_INTERVAL_MS);
      signal.addEventListener('abort', poke, { once: true });
      await wake.promise;
      clearTimeout(timer);
      signal.removeEventListener('abort', poke);
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    }
  } finally {
    for (const i of informers) i.stop();
  }
}

async function pass(opts: KubeControllersOptions): Promise<void> {
  const { client, signal, log } = opts;
  const view = await readView(client, signal);
  await reconcileWorkloads(client, view, log, signal);
  // Scheduling after the workloads: the pods they just created are bound in the next pass (they woke it).
  const plan = planScheduling(view.pods, view.nodes);
  for (const b of plan.bindings) {
    const body = {
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name: b.pod, namespace: b.namespace },
      target: { apiVersion: 'v1', kind: 'Node', name: b.node },
    };
    await client
      .request('POST', `/api/v1/namespaces/${b.namespace}/pods/${b.pod}/binding`, { json: body }, signal)
      .then(() => log.debug({ pod: `${b.namespace}/${b.pod}`, node: b.node }, 'bound'), ignoreConflict);
  }
  for (const key of plan.unschedulable) {
    const pod = view.pods.find((p) => `${namespaceOf(p)}/${nameOf(p)}` === key);
    if (pod !== undefined) await markUnschedulable(client, pod, view.nodes.length, signal);
  }
}

// What `kubectl describe pod` shows for a pod no node fits: PodScheduled False, reason Unschedulable.
async function markUnschedulable(client: KubeClient, pod: Json, nodes: number, signal: AbortSignal): Promise<void> {
  const status = isJson(pod.status) ? pod.status : {};
  const conditions = Array.isArray(status.conditions) ? status.conditions.filter(isJson) : [];
  if (conditions.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable')) return;
  const condition = {
    type: 'PodScheduled',
    status: 'False',
    reason: 'Unschedulable',
    message: `0/${nodes} nodes are available: no Ready node matches the pod's node selector.`,
    lastProbeTime: null,
    lastTransitionTime: k8sTime(new Date()),
  };
  const meta = isJson(pod.metadata) ? { ...pod.metadata } : {};
  delete meta.resourceVersion;
  const body = { ...pod, metadata: meta, status: { ...status, phase: 'Pending', conditions: [condition] } };
  const path = `/api/v1/namespaces/${namespaceOf(pod)}/pods/${nameOf(pod)}/status`;
  await client.request('PUT', path, { json: body }, signal).catch(ignoreConflict);
}

// Dependents before their owners (pods, ReplicaSets, then Deployments and DaemonSets): the garbage
// collector relies on that order (garbage-collector.ts).
async function readView(client: KubeClient, signal: AbortSignal): Promise<ClusterView> {
  const list = async (path: string) => (await client.list(path, signal)).items;
  const pods = await list('/api/v1/pods');
  const replicaSets = await list('/apis/apps/v1/replicasets');
  const deployments = await list('/apis/apps/v1/deployments');
  const daemonSets = await list('/apis/apps/v1/daemonsets');
  const nodes = await list('/api/v1/nodes');
  return { pods, nodes, deployments, replicaSets, daemonSets };
}

/** 404/409: the object changed or went away since the list; the next pass sees the new state. */
export function ignoreConflict(err: unknown): void {
  if (err instanceof KubeError && (err.status === 404 || err.status === 409)) return;
  throw err;
}
