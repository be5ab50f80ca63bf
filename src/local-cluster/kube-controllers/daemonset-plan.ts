// The DaemonSet controller as a pure plan: one pod per eligible node (the template's nodeSelector
// matches the node's labels), created with spec.nodeName set (so the scheduler never sees it) and labelled
// with the template's hash (`controller-revision-hash`). Extra pods on a node and pods on nodes no longer
// eligible are deleted. RollingUpdate (the default) replaces outdated pods one node at a time while no
// more than maxUnavailable (default 1) of the DaemonSet's pods are unavailable; OnDelete leaves them.
import { isJson, type Json } from '../../kube/client.ts';
import { resolveIntOrPercent } from './deployment-plan.ts';
import { creationOf, generationOf, isActivePod, isPodReady, labelsOf, nameOf, specOf } from './objects.ts';
import { CONTROLLER_REVISION_HASH, podFromTemplate, templateHash, withTemplateLabel } from './pod-template.ts';
import { ownedPods } from './replicaset-plan.ts';

export interface DaemonSetPlan {
  readonly create: readonly Json[];
  readonly delete: readonly string[];
  readonly status: Json;
}

export function planDaemonSet(ds: Json, nodes: readonly Json[], pods: readonly Json[]): DaemonSetPlan {
  const spec = specOf(ds);
  const template = isJson(spec.template) ? spec.template : {};
  const hash = templateHash(template);
  const selector = isJson(specOf(template).nodeSelector) ? (specOf(template).nodeSelector as Json) : {};
  const eligible = nodes.filter((n) => Object.entries(selector).every(([k, v]) => labelsOf(n)[k] === v)).map(nameOf);
  const active = ownedPods(ds, pods).filter(isActivePod);
  const byNode = new Map<string, Json[]>();
  for (const p of active) {
    const node = String(specOf(p).nodeName ?? '');
    byNode.set(node, [...(byNode.get(node) ?? []), p]);
  }
  const create: Json[] = [];
  const remove: string[] = [];
  const current = (p: Json) => labelsOf(p)[CONTROLLER_REVISION_HASH] === hash;
  for (const node of eligible) {
    const here = [...(byNode.get(node) ?? [])].sort(
      (a, b) => Number(current(b)) - Number(current(a)) || (creationOf(a) < creationOf(b) ? -1 : 1),
    );
    if (here.length === 0) {
      create.push(
        podFromTemplate(ds, 'apps/v1', 'DaemonSet', withTemplateLabel(template, CONTROLLER_REVISION_HASH, hash), node),
      );
    }
    for (const extra of here.slice(1)) remove.push(nameOf(extra));
  }
  for (const [node, here] of byNode) if (!eligible.includes(node)) remove.push(...here.map(nameOf));
  const strategy = isJson(spec.updateStrategy) ? spec.updateStrategy : {};
  if (strategy.type !== 'OnDelete') {
    const rolling = isJson(strategy.rollingUpdate) ? strategy.rollingUpdate : {};
    const maxUnavailable = Math.max(1, resolveIntOrPercent(rolling.maxUnavailable, eligible.length, false, '1'));
    const kept = eligible
      .map((n) => byNode.get(n)?.[0])
      .filter((p): p is Json => p !== undefined && !remove.includes(nameOf(p)));
    let unavailable = eligible.length - kept.filter(isPodReady).length;
    for (const p of kept) {
      if (unavailable >= maxUnavailable) break;
      if (current(p)) continue;
      remove.push(nameOf(p)); // its replacement is created once it is gone
      if (isPodReady(p)) unavailable++;
    }
  }
  const firstOf = (n: string) => byNode.get(n)?.[0];
  const scheduled = eligible.filter((n) => firstOf(n) !== undefined);
  const ready = scheduled.filter((n) => isPodReady(firstOf(n) as Json)).length;
  return {
    create,
    delete: [...new Set(remove)],
    status: {
      desiredNumberScheduled: eligible.length,
      currentNumberScheduled: scheduled.length,
      numberMisscheduled: [...byNode.keys()].filter((n) => !eligible.includes(n)).length,
      numberReady: ready,
      numberAvailable: ready,
      numberUnavailable: eligible.length - ready,
      updatedNumberScheduled: scheduled.filter((n) => current(firstOf(n) as Json)).length,
      observedGeneration: generationOf(ds),
    },
  };
}
