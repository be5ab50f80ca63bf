// One pod → one mesh Workload (docs/architecture.md "Configuration distribution (delta xDS)", docs/architecture.md "Policy and enrollment"): uid
// `<cluster>//Pod/<ns>/<name>`, placement (IP, node), identity (trust domain, service account), HBONE when
// enrolled, telemetry names, the services it backs (service port → target port, named ports resolved against
// the pod's containers), its waypoint and the selector/mTLS policies it references. Pure.

import { decideAmbient, podWorkloadUid, redirectionEnabled } from '../../mesh/ambient-enrollment.ts';
import { canonicalIp } from '../../mesh/ip-addr.ts';
import { hasSidecar, sidecarTerminatesHbone } from '../../mesh/sidecar-injection.ts';
import type { PolicyKey, PortMap, ServiceKey, TunnelProtocol, Workload } from '../../mesh/types.ts';
import { serviceKey } from '../../mesh/types.ts';
import { matchesLabels } from '../sources/label-match.ts';
import type { Labels, ServiceObject } from '../sources/types.ts';
import type { PeerAuthenticationIndex } from './peer-authentication.ts';
import type { SelectorPolicyIndex } from './selector-index.ts';
import { serviceHostname } from './services.ts';
import type { Diagnostics, Placement, PodInstance, TranslateSettings } from './types.ts';
import type { WaypointIndex } from './waypoints.ts';

const CANONICAL_NAME_LABELS = ['service.istio.io/canonical-name', 'app.kubernetes.io/name', 'app'];
const CANONICAL_REVISION_LABELS = ['service.istio.io/canonical-revision', 'app.kubernetes.io/version', 'version'];

export interface WorkloadContext {
  readonly settings: TranslateSettings;
  readonly placement: Placement;
  readonly namespaceLabels: (namespace: string) => Labels;
  /** Services that could select pods of a namespace (same namespace). */
  readonly servicesIn: (namespace: string) => readonly ServiceObject[];
  /** The WorkloadSelector policies ztunnel will receive, by what they select. */
  readonly selectorPolicies: SelectorPolicyIndex;
  readonly mtls: PeerAuthenticationIndex;
  readonly waypoints: WaypointIndex;
  readonly diags: Diagnostics;
}

/**
 * A pod with a sidecar is never enrolled (the ambient label is ignored for it, as in Istio): it speaks
 * HBONE when its sidecar terminates HBONE itself (Ferry's does: `networking.istio.io/tunnel: http`), else
 * plain TCP. Any other pod is HBONE when it is ambient by Istio's rule, shared with the ztunnel's node
 * agent that captures it (src/mesh/ambient-enrollment.ts), so the two never disagree; with
 * `requireRedirectionAnnotation` (pods from a Kubernetes API) also only once the node agent annotated it
 * captured, as istiod does, so the announcement never runs ahead of the capture.
 */
export function tunnelProtocol(
  pod: Pick<PodInstance, 'labels' | 'annotations' | 'spec'>,
  nsLabels: Labels,
  opts: { readonly requireRedirectionAnnotation?: boolean } = {},
): TunnelProtocol {
  const containers = pod.spec.containers.map((c) => c.name);
  if (hasSidecar(pod.annotations, containers)) {
    return sidecarTerminatesHbone(pod.labels, pod.annotations, containers) ? 'HBONE' : 'TCP';
  }
  const decision = decideAmbient({
    podLabels: pod.labels,
    podAnnotations: pod.annotations,
    containerNames: containers,
    hostNetwork: pod.spec.hostNetwork === true,
    namespaceLabels: nsLabels,
  });
  if (!decision.ambient) return 'TCP';
  if (opts.requireRedirectionAnnotation === true && !redirectionEnabled(pod.annotations)) return 'TCP';
  return 'HBONE';
}

function firstLabel(labels: Labels, keys: readonly string[]): string | undefined {
  for (const k of keys) {
    const v = labels.get(k);
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

/** The pod's entry for each selecting Service: service port → target port (named ports resolved here). */
function backedServices(pod: PodInstance, ctx: WorkloadContext): Map<ServiceKey, PortMap> {
  const out = new Map<ServiceKey, PortMap>();
  for (const svc of ctx.servicesIn(pod.namespace)) {
    const sel = svc.spec.selector;
    if (sel === null || sel.size === 0 || svc.spec.type === 'ExternalName' || !matchesLabels(sel, pod.labels)) continue;
    const ports = new Map<number, number>();
    svc.spec.ports.forEach((p, i) => {
      if (p.protocol !== 'TCP') return;
      if (typeof p.targetPort === 'number') {
        ports.set(p.port, p.targetPort);
        return;
      }
      const name = p.targetPort;
      const found = pod.spec.containers.flatMap((c) => c.ports).find((cp) => cp.name === name && cp.protocol === 'TCP');
      if (found === undefined) {
        const who = pod.owner.kind === 'Deployment' ? `pods of Deployment ${pod.owner.name}` : `pod ${pod.name}`;
        ctx.diags.warn(
          svc,
          'FERRY_TRANSLATE_UNRESOLVED',
          `spec.ports[${i}].targetPort`,
          `named port ${JSON.stringify(name)} is not a TCP containerPort of ${who}; port ${p.port} skipped for them`,
        );
        return;
      }
      ports.set(p.port, found.containerPort);
    });
    out.set(
      serviceKey(svc.metadata.namespace, serviceHostname(svc.metadata.name, svc.metadata.namespace, ctx.settings)),
      ports,
    );
  }
  return out;
}

/** The Workload of a placed pod, or null (not placed yet, or a bad placement). */
export function translateWorkload(pod: PodInstance, ctx: WorkloadContext): Workload | null {
  const placed = ctx.placement.get(pod.key);
  if (placed === undefined) return null; // not scheduled: no address to serve yet
  const ip = canonicalIp(placed.ip);
  if (ip === null) {
    ctx.diags.error(
      pod.source,
      'FERRY_TRANSLATE_UNRESOLVED',
      '',
      `placement of pod ${pod.name} has no valid IP (${JSON.stringify(placed.ip)})`,
    );
    return null;
  }
  const nsLabels = ctx.namespaceLabels(pod.namespace);
  const workloadName = pod.owner.name;
  // Selector policies of the root namespace apply in every namespace (Istio's root-namespace rule).
  const policies: PolicyKey[] = ctx.selectorPolicies.matching(pod.namespace, pod.labels);
  policies.push(...ctx.mtls.policiesFor(pod.namespace, pod.labels).keys);
  return {
    uid: podWorkloadUid(ctx.settings.clusterId, pod.namespace, pod.name),
    name: pod.name,
    namespace: pod.namespace,
    addresses: [ip],
    network: '',
    protocol: tunnelProtocol(pod, nsLabels, ctx.settings),
    trustDomain: ctx.settings.trustDomain,
    serviceAccount: pod.spec.serviceAccountName ?? 'default',
    node: placed.node,
    waypoint: ctx.waypoints.forWorkload(pod.source, pod.namespace, pod.labels, nsLabels),
    workloadName,
    workloadType: pod.owner.kind === 'Deployment' ? 'deployment' : 'pod',
    canonicalName: firstLabel(pod.labels, CANONICAL_NAME_LABELS) ?? workloadName,
    canonicalRevision: firstLabel(pod.labels, CANONICAL_REVISION_LABELS) ?? 'latest',
    clusterId: ctx.settings.clusterId,
    status: 'Healthy',
    capacity: 1,
    authorizationPolicies: [...new Set(policies)],
    services: backedServices(pod, ctx),
  };
}
