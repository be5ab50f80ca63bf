// The node agent's half of the hitless handshake with the controller (docs/architecture.md "Node agent"),
// Istio's istio-cni/istiod contract: after capturing a pod the agent annotates it
// `ambient.istio.io/redirection: enabled`, and the controller announces it HBONE only from then on. To let
// a pod go, the agent first annotates `disabled`, waits until its own ztunnel's mesh view (an xDS client
// of the same controller) shows the pod as TCP or gone, then a short grace for the other ztunnels, and
// only then unenrolls. planRelease decides each step (pure, clock passed in); the patch is the I/O.
import type { KubeClient } from '../../kube/client.ts';
import { REDIRECTION_ANNOTATION, type RedirectionState } from '../../mesh/ambient-enrollment.ts';
import type { TunnelProtocol } from '../../mesh/types.ts';

/**
 * After the agent's own ztunnel saw the pod published as TCP: the other ztunnels are xDS clients of the
 * same controller and get the same push within moments; 1 s covers that on a healthy cluster.
 */
export const RELEASE_GRACE_MS = 1000;
/**
 * A controller that never publishes the pod as TCP (down, or older than the annotation gate) does not keep
 * the pod captured forever: after this long the agent lets it go anyway (the gap Istio also accepts then).
 */
export const RELEASE_MAX_WAIT_MS = 30_000;

/** Where one pod's release stands: when it began, and since when the mesh shows it as TCP (or gone). */
export interface ReleaseProgress {
  readonly startedAtMs: number;
  readonly tcpSinceMs: number | null;
}

export interface ReleaseFacts {
  /** The pod's current annotation value (undefined: none). */
  readonly annotation: string | undefined;
  /** How the agent's own ztunnel sees the pod's workload; undefined when it is not published at all. */
  readonly meshProtocol: TunnelProtocol | undefined;
  readonly progress: ReleaseProgress;
  readonly nowMs: number;
}

export type ReleaseStep =
  /** The annotation still says enabled: set it to disabled first (or the pod is re-announced on relabel). */
  | { readonly kind: 'annotate-disabled' }
  /** Peers may still tunnel to the pod: wait for the mesh to change (or the deadline). */
  | { readonly kind: 'await-mesh'; readonly untilMs: number; readonly progress: ReleaseProgress }
  /** Published as TCP here; the other ztunnels get a moment to apply the same push. */
  | { readonly kind: 'await-grace'; readonly untilMs: number; readonly progress: ReleaseProgress }
  | { readonly kind: 'unenroll'; readonly why: 'published-tcp' | 'timed-out' };

/** The next step of releasing a pod that must no longer be captured (but still exists in the API). */
export function planRelease(f: ReleaseFacts): ReleaseStep {
  // Never unenroll while the annotation says enabled: a relabel would then be announced before capture.
  if (f.annotation === 'enabled') return { kind: 'annotate-disabled' };
  const tcp = f.meshProtocol !== 'HBONE';
  const tcpSinceMs = tcp ? (f.progress.tcpSinceMs ?? f.nowMs) : null;
  const progress = { startedAtMs: f.progress.startedAtMs, tcpSinceMs };
  if (tcpSinceMs === null) {
    const deadline = f.progress.startedAtMs + RELEASE_MAX_WAIT_MS;
    if (f.nowMs >= deadline) return { kind: 'unenroll', why: 'timed-out' };
    return { kind: 'await-mesh', untilMs: deadline, progress };
  }
  const graceEnd = tcpSinceMs + RELEASE_GRACE_MS;
  if (f.nowMs >= graceEnd) return { kind: 'unenroll', why: 'published-tcp' };
  return { kind: 'await-grace', untilMs: graceEnd, progress };
}

/** Sets the pod's redirection annotation (a JSON merge patch; the chart grants `patch` on pods). */
export async function patchRedirection(
  client: KubeClient,
  pod: { readonly namespace: string; readonly name: string },
  state: RedirectionState,
): Promise<void> {
  const path = `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}`;
  await client.request('PATCH', path, {
    json: { metadata: { annotations: { [REDIRECTION_ANNOTATION]: state } } },
    contentType: 'application/merge-patch+json',
  });
}
