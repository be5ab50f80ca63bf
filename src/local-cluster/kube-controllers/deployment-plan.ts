// The Deployment controller as a pure plan over the Deployment, the ReplicaSets it owns (with their
// current status) and the time: which ReplicaSet to create (named <deployment>-<pod-template-hash>),
// which to scale, and the Deployment's status. Rolling updates follow Kubernetes' rules: the new
// ReplicaSet grows while all replicas stay ≤ replicas + maxSurge; old ones shrink while available pods stay
// ≥ replicas − maxUnavailable (unhealthy old pods go first); one step per pass, the next pass sees its
// effect. Recreate scales the old ones to 0 and waits for their pods to go before growing the new one.
// `kubectl rollout status` reads observedGeneration, updated/ready/available replicas and Progressing.
import { isJson, type Json } from '../../kube/client.ts';
import { creationOf, generationOf, isActivePod, metaOf, nameOf, specOf, statusOf } from './objects.ts';
import { POD_TEMPLATE_HASH, templateHash, templatesEqual, withTemplateLabel } from './pod-template.ts';
import { desiredReplicas, ownedPods } from './replicaset-plan.ts';

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';

export interface DeploymentPlan {
  /** A new ReplicaSet to create (its replicas already set), or null. */
  readonly create: Json | null;
  /** ReplicaSets (by name) to set to a replica count, and the revision to stamp on them, if any. */
  readonly scale: readonly { readonly name: string; readonly replicas: number; readonly revision?: string }[];
  readonly status: Json;
  /** The revision annotation the Deployment should carry. */
  readonly revision: string;
}

export function resolveIntOrPercent(v: unknown, total: number, roundUp: boolean, dflt: string): number {
  const value = v === undefined || v === null ? dflt : v;
  if (typeof value === 'number') return Math.max(0, Math.floor(value));
  const m = /^(\d+)%$/.exec(String(value));
  if (m === null) return 0;
  const exact = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

function revisionOf(rs: Json): number {
  const a = metaOf(rs).annotations;
  const r = isJson(a) ? Number(a[REVISION_ANNOTATION]) : Number.NaN;
  return Number.isInteger(r) ? r : 0;
}

const replicasOf = (rs: Json): number => desiredReplicas(rs);
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

export function planDeployment(
  dep: Json,
  ownedReplicaSets: readonly Json[],
  pods: readonly Json[],
  now: string,
): DeploymentPlan {
  const spec = specOf(dep);
  const want = desiredReplicas(dep);
  const template = isJson(spec.template) ? spec.template : {};
  const newRs = ownedReplicaSets.find((rs) => templatesEqual(specOf(rs).template, template));
  const old = ownedReplicaSets.filter((rs) => rs !== newRs).sort((a, b) => (creationOf(a) < creationOf(b) ? -1 : 1));
  const maxRevision = Math.max(0, ...ownedReplicaSets.map(revisionOf));
  const newRevision = newRs !== undefined && revisionOf(newRs) === maxRevision ? maxRevision : maxRevision + 1;
  const scale: { name: string; replicas: number; revision?: string }[] = [];
  let create: Json | null = null;
  const strategy = isJson(spec.strategy) ? spec.strategy : {};
  const rolling = isJson(strategy.rollingUpdate) ? strategy.rollingUpdate : {};
  let maxSurge = resolveIntOrPercent(rolling.maxSurge, want, true, '25%');
  let maxUnavailable = resolveIntOrPercent(rolling.maxUnavailable, want, false, '25%');
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1; // Kubernetes refuses 0/0; be lenient
  if (strategy.type === 'Recreate') {
    maxSurge = 0;
    maxUnavailable = want;
  }
  const paused = spec.paused === true;
  const newReplicasNow = newRs === undefined ? 0 : replicasOf(newRs);
  const oldTotal = old.reduce((n, rs) => n + replicasOf(rs), 0);
  if (!paused) {
    if (strategy.type === 'Recreate') {
      const oldPods = old.flatMap((rs) => ownedPods(rs, pods)).filter((p) => !isFinished(p));
      for (const rs of old) if (replicasOf(rs) > 0) scale.push({ name: nameOf(rs), replicas: 0 });
      const target = oldTotal === 0 && oldPods.length === 0 ? want : newReplicasNow;
      if (newRs === undefined) create = newReplicaSet(dep, template, newRevision, target);
      else if (newReplicasNow !== target) scale.push({ name: nameOf(newRs), replicas: target });
    } else {
      const target = rollingNewReplicas(want, newReplicasNow, oldTotal, maxSurge);
      if (newRs === undefined) create = newReplicaSet(dep, template, newRevision, target);
      else if (target !== newReplicasNow) scale.push({ name: nameOf(newRs), replicas: target });
      // As Kubernetes: a pass that grew the new ReplicaSet leaves the old ones to the next pass.
      if (create === null && target <= newReplicasNow && newRs !== undefined) {
        scale.push(...scaleDownOld(old, newRs, want, maxUnavailable));
      }
    }
  }
  if (newRs !== undefined && revisionOf(newRs) !== newRevision) {
    const i = scale.findIndex((s) => s.name === nameOf(newRs));
    const entry = {
      name: nameOf(newRs),
      replicas: i >= 0 ? (scale[i]?.replicas ?? newReplicasNow) : newReplicasNow,
      revision: String(newRevision),
    };
    if (i >= 0) scale[i] = entry;
    else scale.push(entry);
  }
  return {
    create,
    scale,
    status: deploymentStatus(dep, ownedReplicaSets, newRs, want, maxUnavailable, now),
    revision: String(newRevision),
  };
}

function isFinished(p: Json): boolean {
  return !isActivePod(p) && typeof metaOf(p).deletionTimestamp !== 'string';
}

/** Replicas of the new ReplicaSet this pass: grow within the surge, never above `want`. */
export function rollingNewReplicas(want: number, current: number, oldTotal: number, maxSurge: number): number {
  if (current >= want) return want; // also scales a grown one down after `kubectl scale`
  const room = want + maxSurge - (current + oldTotal);
  return room <= 0 ? current : Math.min(want, current + room);
}

function scaleDownOld(old: readonly Json[], newRs: Json, want: number, maxUnavailable: number) {
  const out: { name: string; replicas: number }[] = [];
  const all = [newRs, ...old];
  const total = all.reduce((n, rs) => n + replicasOf(rs), 0);
  const minAvailable = want - maxUnavailable;
  const newUnavailable = Math.max(0, replicasOf(newRs) - num(statusOf(newRs).availableReplicas));
  let budget = total - minAvailable - newUnavailable;
  const left = new Map(old.map((rs) => [nameOf(rs), replicasOf(rs)]));
  // Unhealthy old pods first: removing them costs no availability.
  for (const rs of old) {
    if (budget <= 0) break;
    const cur = left.get(nameOf(rs)) ?? 0;
    const unhealthy = Math.max(0, cur - num(statusOf(rs).availableReplicas));
    const cut = Math.min(budget, unhealthy);
    if (cut > 0) {
      left.set(nameOf(rs), cur - cut);
      budget -= cut;
    }
  }
  const available = all.reduce((n, rs) => n + num(statusOf(rs).availableReplicas), 0);
  let healthyBudget = available - minAvailable;
  for (const rs of old) {
    if (healthyBudget <= 0) break;
    const cur = left.get(nameOf(rs)) ?? 0;
    const cut = Math.min(healthyBudget, cur);
    left.set(nameOf(rs), cur - cut);
    healthyBudget -= cut;
  }
  for (const rs of old) {
    const next = left.get(nameOf(rs)) ?? 0;
    if (next !== replicasOf(rs)) out.push({ name: nameOf(rs), replicas: next });
  }
  return out;
}

function newReplicaSet(dep: Json, template: Json, revision: number, replicas: number): Json {
  const spec = specOf(dep);
  const hash = templateHash(template, num(statusOf(dep).collisionCount));
  const selector = isJson(spec.selector) ? spec.selector : {};
  const matchLabels = isJson(selector.matchLabels) ? selector.matchLabels : {};
  const meta = metaOf(dep);
  const tmplLabels = isJson(template.metadata) && isJson(template.metadata.labels) ? template.metadata.labels : {};
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `${nameOf(dep)}-${hash}`,
      namespace: meta.namespace,
      labels: { ...tmplLabels, [POD_TEMPLATE_HASH]: hash },
      annotations: {
        [REVISION_ANNOTATION]: String(revision),
        'deployment.kubernetes.io/desired-replicas': String(desiredReplicas(dep)),
      },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          name: nameOf(dep),
          uid: meta.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      replicas,
      ...(typeof spec.minReadySeconds === 'number' ? { minReadySeconds: spec.minReadySeconds } : {}),
      selector: { ...selector, matchLabels: { ...matchLabels, [POD_TEMPLATE_HASH]: hash } },
      template: withTemplateLabel(template, POD_TEMPLATE_HASH, hash),
    },
  };
}

function deploymentStatus(
  dep: Json,
  rses: readonly Json[],
  newRs: Json | undefined,
  want: number,
  maxUnavailable: number,
  now: string,
): Json {
  const sum = (key: string) => rses.reduce((n, rs) => n + num(statusOf(rs)[key]), 0);
  const replicas = sum('replicas');
  const updated = newRs === undefined ? 0 : num(statusOf(newRs).replicas);
  const available = sum('availableReplicas');
  const complete = updated === want && replicas === want && available >= want && newRs !== undefined;
  const previous = Array.isArray(statusOf(dep).conditions)
    ? (statusOf(dep).conditions as unknown[]).filter(isJson)
    : [];
  const condition = (type: string, ok: boolean, reason: string, message: string): Json => {
    const prev = previous.find((c) => c.type === type);
    const status = ok ? 'True' : 'False';
    const same = prev?.status === status && prev.reason === reason;
    return {
      type,
      status,
      lastUpdateTime: same && typeof prev?.lastUpdateTime === 'string' ? prev.lastUpdateTime : now,
      lastTransitionTime:
        prev?.status === status && typeof prev.lastTransitionTime === 'string' ? prev.lastTransitionTime : now,
      reason,
      message,
    };
  };
  const name = newRs === undefined ? '' : nameOf(newRs);
  return {
    observedGeneration: generationOf(dep),
    replicas,
    updatedReplicas: updated,
    readyReplicas: sum('readyReplicas'),
    availableReplicas: available,
    unavailableReplicas: Math.max(0, want - available),
    conditions: [
      available >= want - maxUnavailable
        ? condition('Available', true, 'MinimumReplicasAvailable', 'Deployment has minimum availability.')
        : condition('Available', false, 'MinimumReplicasUnavailable', 'Deployment does not have minimum availability.'),
      complete
        ? condition('Progressing', true, 'NewReplicaSetAvailable', `ReplicaSet "${name}" has successfully progressed.`)
        : condition('Progressing', true, 'ReplicaSetUpdated', `ReplicaSet "${name}" is progressing.`),
    ],
    ...(typeof statusOf(dep).collisionCount === 'number' ? { collisionCount: statusOf(dep).collisionCount } : {}),
  };
}
