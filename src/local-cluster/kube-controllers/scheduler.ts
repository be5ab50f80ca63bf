// The local cluster's scheduler, as a pure plan: every pod without spec.nodeName (and not being deleted
// or finished) goes to the Ready node that matches its nodeSelector and runs the fewest pods of its app
// (same namespace and `app` / `app.kubernetes.io/name` label: kube-scheduler's default topology spreading
// by hostname, which keeps the pods behind one Service apart), then the fewest pods; ties go to the lower
// node name. Pods are placed oldest first, each placement counted before the next one.
import { isJson, type Json } from '../../kube/client.ts';
import { creationOf, isActivePod, labelsOf, nameOf, namespaceOf, specOf, statusOf } from './objects.ts';

export interface Binding {
  readonly namespace: string;
  readonly pod: string;
  readonly node: string;
}

export interface SchedulingPlan {
  readonly bindings: readonly Binding[];
  /** `ns/name` of pods no node fits (nodeSelector matches no Ready node). */
  readonly unschedulable: readonly string[];
}

export function planScheduling(pods: readonly Json[], nodes: readonly Json[]): SchedulingPlan {
  const ready = nodes.filter(isNodeReady).sort((a, b) => (nameOf(a) < nameOf(b) ? -1 : 1));
  const load = new Map(ready.map((n) => [nameOf(n), 0]));
  /** `app key → node → pods`, for spreading. */
  const appLoad = new Map<string, Map<string, number>>();
  const place = (p: Json, node: string) => {
    load.set(node, (load.get(node) ?? 0) + 1);
    const key = appKeyOf(p);
    if (key === null) return;
    const perNode = appLoad.get(key) ?? new Map<string, number>();
    perNode.set(node, (perNode.get(node) ?? 0) + 1);
    appLoad.set(key, perNode);
  };
  for (const p of pods) {
    const node = specOf(p).nodeName;
    if (typeof node === 'string' && load.has(node) && isActivePod(p)) place(p, node);
  }
  const pending = pods
    .filter((p) => isActivePod(p) && (typeof specOf(p).nodeName !== 'string' || specOf(p).nodeName === ''))
    .sort((a, b) =>
      creationOf(a) === creationOf(b) ? (nameOf(a) < nameOf(b) ? -1 : 1) : creationOf(a) < creationOf(b) ? -1 : 1,
    );
  const bindings: Binding[] = [];
  const unschedulable: string[] = [];
  for (const pod of pending) {
    const selector = isJson(specOf(pod).nodeSelector) ? (specOf(pod).nodeSelector as Json) : {};
    const key = appKeyOf(pod);
    const sameApp = (node: string) => (key === null ? 0 : (appLoad.get(key)?.get(node) ?? 0));
    let best: string | null = null;
    for (const node of ready) {
      const labels = labelsOf(node);
      if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) continue;
      const name = nameOf(node);
      if (
        best === null ||
        sameApp(name) < sameApp(best) ||
        (sameApp(name) === sameApp(best) && (load.get(name) ?? 0) < (load.get(best) ?? 0))
      )
        best = name;
    }
    if (best === null) {
      unschedulable.push(`${namespaceOf(pod)}/${nameOf(pod)}`);
      continue;
    }
    place(pod, best);
    bindings.push({ namespace: namespaceOf(pod), pod: nameOf(pod), node: best });
  }
  return { bindings, unschedulable };
}

/** The spreading group of a pod: its namespace and app label; null when it has none. */
function appKeyOf(pod: Json): string | null {
  const labels = labelsOf(pod);
  const app = labels.app ?? labels['app.kubernetes.io/name'];
  return typeof app === 'string' ? `${namespaceOf(pod)}/${app}` : null;
}

export function isNodeReady(node: Json): boolean {
  const conditions = Array.isArray(statusOf(node).conditions) ? (statusOf(node).conditions as unknown[]) : [];
  return conditions.some((c) => isJson(c) && c.type === 'Ready' && c.status === 'True');
}
