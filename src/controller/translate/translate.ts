// ClusterState → MeshConfig (+ waypoints to run, + diagnostics): the one entry point of translation, shared
// by every source (docs/architecture.md "Configuration distribution (delta xDS)", "Policy and enrollment"). Pure and total: never throws on cluster content, never lets one bad
// object disturb the others, deterministic output order (workloads by ns/name, services by ns/name,
// policies by ns/name) so that pushes and golden files diff cleanly.

import { hasSidecar } from '../../mesh/sidecar-injection.ts';
import type { Authorization, MeshConfig, Service, Workload } from '../../mesh/types.ts';
import { policyKey } from '../../mesh/types.ts';
import type { ClusterState, K8sObject, Labels, ServiceObject } from '../sources/types.ts';
import { convertAuthorizationPolicy } from './authorization-policy.ts';
import { applyEndpointSlices } from './endpoint-slices.ts';
import { PeerAuthenticationIndex } from './peer-authentication.ts';
import { expandPods } from './pods.ts';
import { type SelectorPolicy, SelectorPolicyIndex } from './selector-index.ts';
import { translateService } from './services.ts';
import {
  DEFAULT_TRANSLATE_SETTINGS,
  Diagnostics,
  type Placement,
  type PodInstance,
  type ServiceVips,
  type TranslateResult,
  type TranslateSettings,
  type WaypointSpec,
} from './types.ts';
import { allowFromWaypoints, asWaypointWorkload, l7Entries, routeStatuses, waypointService } from './waypoint-l7.ts';
import { WaypointIndex } from './waypoints.ts';
import { translateWorkload } from './workloads.ts';

export interface TranslateInputs {
  /** `<ns>/<pod>` → {ip, node}; see expandPods for the pod names. */
  readonly placement: Placement;
  /** `<ns>/<service>` → ClusterIP. */
  readonly vips: ServiceVips;
}

const EMPTY_LABELS: Labels = new Map();
// Namespaces every cluster has; objects may live there without a Namespace manifest.
const BUILTIN_NAMESPACES = ['default', 'kube-system', 'kube-public'];

const byKey = <T extends { namespace: string; name: string }>(a: T, b: T): number => {
  const ka = `${a.namespace}/${a.name}`;
  const kb = `${b.namespace}/${b.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

export function translateCluster(
  state: ClusterState,
  inputs: TranslateInputs,
  overrides: Partial<TranslateSettings> = {},
): TranslateResult {
  const settings: TranslateSettings = { ...DEFAULT_TRANSLATE_SETTINGS, ...overrides };
  const diags = new Diagnostics();
  const nsLabels = new Map<string, Labels>(state.namespaces.map((n) => [n.metadata.name, n.metadata.labels]));
  const known = new Set([...nsLabels.keys(), ...BUILTIN_NAMESPACES, settings.rootNamespace]);
  const checkNamespace = (o: K8sObject) => {
    if (o.kind !== 'Namespace' && !known.has(o.metadata.namespace)) {
      diags.warn(
        o,
        'FERRY_TRANSLATE_UNRESOLVED',
        'metadata.namespace',
        `Namespace ${o.metadata.namespace} is not declared; treated as existing, without labels`,
      );
    }
  };
  const namespaceLabels = (ns: string) => nsLabels.get(ns) ?? EMPTY_LABELS;

  const waypoints = new WaypointIndex(state.gateways, settings, diags);
  const waypointSpecs = waypoints.specs();
  const waypointWorkloads: string[] = [];
  const sidecarWorkloads: string[] = [];
  const mtls = new PeerAuthenticationIndex(state.peerAuthentications, settings, diags);

  // Authorization policies first: workloads reference the selector ones that were actually emitted.
  const policies: Authorization[] = [];
  const selectorPolicies: SelectorPolicy[] = [];
  for (const ap of state.authorizationPolicies) {
    checkNamespace(ap);
    const converted = convertAuthorizationPolicy(ap, settings, diags);
    if (converted === null) continue;
    policies.push(converted);
    if (ap.spec.selector !== null) {
      selectorPolicies.push({
        key: policyKey(ap.metadata.namespace, ap.metadata.name),
        namespace: ap.metadata.namespace,
        selector: ap.spec.selector,
      });
    }
  }

  const services: Service[] = [];
  const servicesByNs = new Map<string, ServiceObject[]>();
  for (const svc of state.services) {
    checkNamespace(svc);
    const out = translateService(svc, inputs.vips, namespaceLabels(svc.metadata.namespace), waypoints, settings, diags);
    if (out === null) continue;
    services.push(out);
    const list = servicesByNs.get(svc.metadata.namespace) ?? [];
    list.push(svc);
    servicesByNs.set(svc.metadata.namespace, list);
  }

  const selectorIndex = new SelectorPolicyIndex(selectorPolicies, settings.rootNamespace);
  const serviceAccounts = new Set(state.serviceAccounts.map((sa) => `${sa.metadata.namespace}/${sa.metadata.name}`));
  const workloads: Workload[] = [];
  for (const pod of expandPods(state, diags, settings)) {
    checkNamespace(pod.source);
    const sa = pod.spec.serviceAccountName;
    // A waypoint's service account is its own (Istio creates it with the Deployment).
    if (
      sa !== null &&
      sa !== 'default' &&
      pod.owner.kind !== 'Gateway' &&
      !serviceAccounts.has(`${pod.namespace}/${sa}`)
    ) {
      const field =
        pod.owner.kind === 'Deployment' ? 'spec.template.spec.serviceAccountName' : 'spec.serviceAccountName';
      diags.warn(
        pod.source,
        'FERRY_TRANSLATE_UNRESOLVED',
        field,
        `ServiceAccount ${pod.namespace}/${sa} is not declared`,
      );
    }
    let w = translateWorkload(pod, {
      settings,
      placement: inputs.placement,
      namespaceLabels,
      servicesIn: (ns) => servicesByNs.get(ns) ?? [],
      selectorPolicies: selectorIndex,
      mtls,
      waypoints,
      diags,
    });
    const wp = pod.owner.kind === 'Gateway' ? waypointSpecs.find((s) => s.podKey === pod.key) : undefined;
    if (w !== null && wp !== undefined) {
      w = asWaypointWorkload(w, wp, settings);
      waypointWorkloads.push(w.uid);
    }
    if (w === null) continue;
    workloads.push(w);
    const containers = pod.spec.containers.map((c) => c.name);
    if (w.protocol === 'HBONE' && hasSidecar(pod.annotations, containers)) sidecarWorkloads.push(w.uid);
  }
  for (const wp of waypointSpecs) services.push(waypointService(wp, settings));
  const endpointWorkloads = applyEndpointSlices(workloads, state.services, state.endpointSlices, settings, diags);
  for (const o of [
    ...state.serviceAccounts,
    ...state.peerAuthentications,
    ...state.gateways,
    ...state.httpRoutes,
    ...state.grpcRoutes,
    ...state.tcpRoutes,
    ...state.referenceGrants,
    ...state.endpointSlices,
  ])
    checkNamespace(o);

  policies.push(...mtls.policies());
  const implicit = allowFromWaypoints(endpointWorkloads, services, policies, waypointSpecs, settings);
  policies.push(...implicit.policies);
  const config: MeshConfig = {
    workloads: implicit.workloads.sort(byKey),
    services: services.sort(byKey),
    policies: policies.sort(byKey),
  };
  const routeStatus = routeStatuses(state, config.services, waypointSpecs, diags);
  return {
    config,
    waypoints: waypointSpecs,
    diagnostics: diags.list,
    l7: l7Entries(state, waypointSpecs),
    routeStatus,
    waypointWorkloads,
    sidecarWorkloads,
  };
}

/**
 * The pods the orchestrator must place (Pods, and `<deployment>-<i>` replicas), sorted by `<ns>/<name>`;
 * with `injectSidecars`, as the sidecar injector leaves them.
 */
export function listPods(state: ClusterState, settings: Partial<TranslateSettings> = {}): PodInstance[] {
  return expandPods(state, new Diagnostics(), settings);
}

/** The valid waypoints (Gateways of class ferry-waypoint) the orchestrator must run. */
export function listWaypoints(state: ClusterState): WaypointSpec[] {
  return new WaypointIndex(state.gateways, { ...DEFAULT_TRANSLATE_SETTINGS }, new Diagnostics()).specs();
}
