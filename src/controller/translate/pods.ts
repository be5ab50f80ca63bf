// The pods a cluster state asks for: every Pod object, plus `replicas` pods per Deployment named
// `<deployment>-<index>` (index 0..replicas-1; no ReplicaSet layer and no random suffix, so names are stable
// across restarts and readable in `ferry status`). A generated name that collides with a Pod object loses to
// the Pod, with a diagnostic. The orchestrator places exactly these pods. Pure.
import {
  decideSidecarInjection,
  FERRY_SIDECAR_IMAGE,
  injectedMetadata,
  SIDECAR_CONTAINER,
} from '../../mesh/sidecar-injection.ts';
import type { ClusterState, GatewayObject, Labels } from '../sources/types.ts';
import type { Diagnostics, PodInstance } from './types.ts';

export const podKey = (namespace: string, name: string): string => `${namespace}/${name}`;

/** All pods of the cluster, sorted by key. */
export function expandPods(
  state: ClusterState,
  diags: Diagnostics,
  opts: { readonly injectSidecars?: boolean; readonly sidecarPods?: ReadonlySet<string> } = {},
): PodInstance[] {
  const nsLabels = new Map<string, Labels>(state.namespaces.map((n) => [n.metadata.name, n.metadata.labels]));
  const created = opts.sidecarPods;
  const inject = (p: PodInstance): PodInstance => {
    if (created !== undefined) return created.has(p.key) ? withSidecar(p, nsLabels.get(p.namespace), 'created') : p;
    return opts.injectSidecars === true ? withSidecar(p, nsLabels.get(p.namespace), 'decide') : p;
  };
  const pods = new Map<string, PodInstance>();
  for (const p of state.pods) {
    const key = podKey(p.metadata.namespace, p.metadata.name);
    pods.set(
      key,
      inject({
        key,
        name: p.metadata.name,
        namespace: p.metadata.namespace,
        labels: p.metadata.labels,
        annotations: p.metadata.annotations,
        spec: p.spec,
        owner: { kind: 'Pod', name: p.metadata.name },
        source: p,
      }),
    );
  }
  for (const d of state.deployments) {
    for (let i = 0; i < d.spec.replicas; i++) {
      const name = `${d.metadata.name}-${i}`;
      const key = podKey(d.metadata.namespace, name);
      const clash = pods.get(key);
      if (clash !== undefined) {
        const other = clash.owner.kind === 'Pod' ? `Pod ${name}` : `a pod of Deployment ${clash.owner.name}`;
        diags.error(
          d,
          'FERRY_TRANSLATE_CONFLICT',
          'metadata.name',
          `replica ${i} would be named ${name}, which ${other} already uses; replica skipped`,
        );
        continue;
      }
      const t = d.spec.template;
      pods.set(
        key,
        inject({
          key,
          name,
          namespace: d.metadata.namespace,
          labels: t.labels,
          annotations: t.annotations,
          spec: t.spec,
          owner: { kind: 'Deployment', name: d.metadata.name },
          source: d,
        }),
      );
    }
  }
  for (const gw of state.gateways) {
    if (!isWaypointGateway(gw)) continue;
    const name = waypointPodName(gw.metadata.name);
    const key = podKey(gw.metadata.namespace, name);
    if (pods.has(key)) {
      diags.error(
        gw,
        'FERRY_TRANSLATE_CONFLICT',
        'metadata.name',
        `the waypoint pod would be named ${name}, which is taken; no waypoint runs`,
      );
      continue;
    }
    pods.set(key, {
      key,
      name,
      namespace: gw.metadata.namespace,
      // Not enrolled: a waypoint terminates HBONE itself.
      labels: new Map([
        [WAYPOINT_POD_LABEL, gw.metadata.name],
        ['istio.io/dataplane-mode', 'none'],
      ]),
      annotations: new Map(),
      spec: { serviceAccountName: gw.metadata.name, containers: [] },
      owner: { kind: 'Gateway', name: gw.metadata.name },
      source: gw,
    });
  }
  return [...pods.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * The pod as the sidecar injector leaves it (src/mesh/sidecar-injection.ts decides): an `istio-proxy`
 * container (Ferry's sidecar image), `sidecar.istio.io/status`, and the tunnel label that makes peers send
 * HBONE to it. Other pods are returned unchanged.
 */
function withSidecar(pod: PodInstance, namespaceLabels: Labels | undefined, mode: 'decide' | 'created'): PodInstance {
  const containerNames = pod.spec.containers.map((c) => c.name);
  // 'created': the pod already runs Ferry's sidecar (decided when it was created); never added twice.
  const inject =
    mode === 'created'
      ? !containerNames.includes(SIDECAR_CONTAINER)
      : decideSidecarInjection({
          namespace: pod.namespace,
          namespaceLabels: namespaceLabels ?? new Map(),
          podLabels: pod.labels,
          podAnnotations: pod.annotations,
          containerNames,
        }).inject;
  if (!inject) return pod;
  const meta = injectedMetadata(pod.labels, pod.annotations);
  const proxy = { name: SIDECAR_CONTAINER, image: FERRY_SIDECAR_IMAGE, command: [], args: [], ports: [] };
  return { ...pod, ...meta, spec: { ...pod.spec, containers: [...pod.spec.containers, proxy] } };
}

export const WAYPOINT_POD_LABEL = 'gateway.networking.k8s.io/gateway-name';

/** The pod a waypoint Gateway runs as. */
export function waypointPodName(gateway: string): string {
  return `${gateway}-waypoint`;
}

/** A Gateway of class ferry-waypoint with the HBONE mesh listener (WaypointIndex reports the others). */
export function isWaypointGateway(gw: GatewayObject): boolean {
  return (
    gw.spec.gatewayClassName === 'ferry-waypoint' &&
    gw.spec.listeners.some((l) => l.name === 'mesh' && l.port === 15008 && l.protocol === 'HBONE')
  );
}
