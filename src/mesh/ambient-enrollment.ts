// Istio's ambient enrollment rule (its PodRedirectionEnabled): the one place that says whether a pod's
// traffic belongs to the ambient mesh. The controller uses it to announce the pod as HBONE; the ztunnel's
// node agent uses it to capture the pod. Both read the same labels with the same function, so a pod is
// never announced HBONE by one and left uncaptured by the other (docs/architecture.md "Node agent"). Pure.

import { hasSidecar } from './sidecar-injection.ts';

export const DATAPLANE_MODE_LABEL = 'istio.io/dataplane-mode';

/**
 * Istio's redirection annotation: the node agent sets it to `enabled` once it captured a pod and to
 * `disabled` before it lets the pod go. A controller reading pods from a Kubernetes API announces a pod
 * as HBONE only while it says `enabled`, so a peer never tunnels to a pod that is not captured yet, or
 * no longer (docs/architecture.md "Node agent").
 */
export const REDIRECTION_ANNOTATION = 'ambient.istio.io/redirection';
export type RedirectionState = 'enabled' | 'disabled';

/** Whether the node agent reported the pod captured (the annotation says `enabled`). */
export function redirectionEnabled(podAnnotations: ReadonlyMap<string, string>): boolean {
  return podAnnotations.get(REDIRECTION_ANNOTATION) === 'enabled';
}

/** What the rule reads of a pod and its namespace (domain values, parsed from the API at the edge). */
export interface AmbientPodFacts {
  readonly podLabels: ReadonlyMap<string, string>;
  readonly podAnnotations: ReadonlyMap<string, string>;
  /** Names of spec.containers. */
  readonly containerNames: readonly string[];
  readonly hostNetwork: boolean;
  readonly namespaceLabels: ReadonlyMap<string, string>;
}

export type AmbientReason =
  | 'namespace-ambient'
  | 'pod-ambient'
  | 'not-labelled'
  | 'pod-opted-out'
  | 'sidecar'
  | 'host-network';

export type AmbientDecision =
  | { readonly ambient: true; readonly reason: 'namespace-ambient' | 'pod-ambient' }
  | { readonly ambient: false; readonly reason: Exclude<AmbientReason, 'namespace-ambient' | 'pod-ambient'> };

/**
 * Istio's order: the namespace or the pod must say `ambient`; a pod with a sidecar never (it speaks mTLS
 * itself and would be tunnelled twice); a pod labelled `none` opts out; a hostNetwork pod shares the node's
 * network namespace, so capturing it would capture the node.
 */
export function decideAmbient(facts: AmbientPodFacts): AmbientDecision {
  const own = facts.podLabels.get(DATAPLANE_MODE_LABEL);
  const byPod = own === 'ambient';
  if (!byPod && facts.namespaceLabels.get(DATAPLANE_MODE_LABEL) !== 'ambient') {
    return { ambient: false, reason: 'not-labelled' };
  }
  if (hasSidecar(facts.podAnnotations, facts.containerNames)) {
    return { ambient: false, reason: 'sidecar' };
  }
  if (own === 'none') return { ambient: false, reason: 'pod-opted-out' };
  if (facts.hostNetwork) return { ambient: false, reason: 'host-network' };
  return { ambient: true, reason: byPod ? 'pod-ambient' : 'namespace-ambient' };
}

/** The mesh Workload uid of a Kubernetes pod: what the controller publishes and the node agent enrolls. */
export function podWorkloadUid(clusterId: string, namespace: string, name: string): string {
  return `${clusterId}//Pod/${namespace}/${name}`;
}
