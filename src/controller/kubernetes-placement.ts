// Placement when the cluster is a Kubernetes API (docs/architecture.md "Kubernetes source"): the scheduler and kubelet already decided,
// so a pod runs where its spec.nodeName says with the IP its status.podIP reports; pods not yet given an IP,
// and pods that finished (Succeeded/Failed), get no Workload. A waypoint's pod (labelled
// gateway.networking.k8s.io/gateway-name=<gateway>) stands for the waypoint translation expects for that
// Gateway, and not for itself, so the mesh holds it once. Services keep the ClusterIP the API server
// allocated (translation reads spec.clusterIP). Pure.
import type { PlacementProvider } from './controller.ts';
import type { ClusterState } from './sources/types.ts';
import { WAYPOINT_POD_LABEL } from './translate/pods.ts';
import type { TranslateInputs } from './translate/translate.ts';
import type { PodInstance, PodPlacement } from './translate/types.ts';

const FINISHED = new Set(['Succeeded', 'Failed']);

export function placeFromApi(pods: readonly PodInstance[], state: ClusterState): TranslateInputs {
  const running = new Map<string, PodPlacement>();
  const waypointPods = new Map<string, PodPlacement>(); // `<ns>/<gateway>` → the waypoint pod's placement
  for (const p of state.pods) {
    const ip = p.status?.podIP ?? null;
    const node = p.spec.nodeName;
    if (ip === null || node === undefined || FINISHED.has(p.status?.phase ?? '')) continue;
    const placed = { ip, node };
    const gateway = p.metadata.labels.get(WAYPOINT_POD_LABEL);
    if (gateway !== undefined) waypointPods.set(`${p.metadata.namespace}/${gateway}`, placed);
    else running.set(`${p.metadata.namespace}/${p.metadata.name}`, placed);
  }
  const placement = new Map<string, PodPlacement>();
  for (const pod of pods) {
    const placed =
      pod.owner.kind === 'Gateway' ? waypointPods.get(`${pod.namespace}/${pod.owner.name}`) : running.get(pod.key);
    if (placed !== undefined) placement.set(pod.key, placed);
  }
  return { placement, vips: new Map() };
}

export const kubernetesPlacement: PlacementProvider = { place: placeFromApi };
