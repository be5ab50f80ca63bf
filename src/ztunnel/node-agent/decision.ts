// Whether the node agent captures a pod of its node (pure). The ambient part is the rule the controller
// also uses (src/mesh/ambient-enrollment.ts); on top of it, a pod's lifecycle: a terminating pod or one in
// a terminal phase is let go, and a pod of another node is never this agent's.
import { type AmbientReason, decideAmbient } from '../../mesh/ambient-enrollment.ts';
import type { NodePod } from './pod.ts';

export type EnrollmentReason = AmbientReason | 'terminating' | 'terminal-phase' | 'other-node' | 'own-pod';

export type EnrollmentDecision =
  | { readonly enroll: true; readonly reason: 'namespace-ambient' | 'pod-ambient' }
  | { readonly enroll: false; readonly reason: Exclude<EnrollmentReason, 'namespace-ambient' | 'pod-ambient'> };

const TERMINAL_PHASES: ReadonlySet<string> = new Set(['Succeeded', 'Failed']);

/** The decision for one pod, given this node's name, its namespace's labels and the ztunnel's own pod uid. */
export function decideEnrollment(
  pod: NodePod,
  node: string,
  namespaceLabels: ReadonlyMap<string, string>,
  ownPodUid: string | null = null,
): EnrollmentDecision {
  if (pod.nodeName !== node) return { enroll: false, reason: 'other-node' };
  // Captured, the ztunnel's own connections (API, xDS, CA, upstream dials) would be sent to itself. The
  // chart labels its pods `none`; this holds even if a namespace label or a values override says otherwise.
  if (ownPodUid !== null && pod.uid === ownPodUid) return { enroll: false, reason: 'own-pod' };
  if (pod.deleting) return { enroll: false, reason: 'terminating' };
  if (TERMINAL_PHASES.has(pod.phase)) return { enroll: false, reason: 'terminal-phase' };
  const ambient = decideAmbient({
    podLabels: pod.labels,
    podAnnotations: pod.annotations,
    containerNames: pod.containerNames,
    hostNetwork: pod.hostNetwork,
    namespaceLabels,
  });
  return ambient.ambient ? { enroll: true, reason: ambient.reason } : { enroll: false, reason: ambient.reason };
}
