// Sidecar injection: whether a pod gets Ferry's sidecar proxy (container `istio-proxy`), decided once from
// the labels and annotations Istio's injector reads, and what an injected pod looks like. Pure: the
// controller's translation (which announces the pod as HBONE) and the local cluster's runtime (which starts
// the proxy) both call it, so they never disagree. No revisions (`istio.io/rev`) and no mesh-wide
// `neverInjectSelector`: Ferry has one control plane (docs/migration.md, "Sidecar mode").

export const INJECTION_NAMESPACE_LABEL = 'istio-injection';
/** Pod label (or, deprecated in Istio but still read, annotation) `"true"` / `"false"`. */
export const INJECT_POD_KEY = 'sidecar.istio.io/inject';
export const SIDECAR_STATUS_ANNOTATION = 'sidecar.istio.io/status';
export const SIDECAR_CONTAINER = 'istio-proxy';
/** Istio's label for a sidecar that terminates HBONE itself (so peers tunnel to its 15008). */
export const TUNNEL_LABEL = 'networking.istio.io/tunnel';
export const TUNNEL_LABEL_HTTP = 'http';
/** The image the injected container names; the local cluster runs `ferry ztunnel --sidecar` for it. */
export const FERRY_SIDECAR_IMAGE = 'ferry/sidecar';
/** Namespaces Istio's webhook never injects into. */
const NEVER_INJECTED_NAMESPACES = new Set(['kube-system', 'kube-public']);

type StringMap = ReadonlyMap<string, string>;

export interface InjectionInput {
  readonly namespace: string;
  readonly namespaceLabels: StringMap;
  readonly podLabels: StringMap;
  readonly podAnnotations: StringMap;
  readonly containerNames: readonly string[];
}

export type InjectionReason =
  | 'already-injected'
  | 'system-namespace'
  | 'namespace-disabled'
  | 'pod-opt-out'
  | 'pod-opt-in'
  | 'namespace-enabled'
  | 'not-selected';

export type InjectionDecision =
  | { readonly inject: true; readonly reason: 'pod-opt-in' | 'namespace-enabled' }
  | { readonly inject: false; readonly reason: Exclude<InjectionReason, 'pod-opt-in' | 'namespace-enabled'> };

/**
 * Istio's order: an already injected pod is left alone; system namespaces and `istio-injection=disabled`
 * never inject; the pod's own `sidecar.istio.io/inject` (label first, then annotation) decides next; then
 * the namespace's `istio-injection=enabled`. The ambient label plays no part: a pod with a sidecar is never
 * captured by its node's ztunnel (sidecarOwnsPod).
 */
export function decideSidecarInjection(input: InjectionInput): InjectionDecision {
  if (hasSidecar(input.podAnnotations, input.containerNames)) return { inject: false, reason: 'already-injected' };
  if (NEVER_INJECTED_NAMESPACES.has(input.namespace)) return { inject: false, reason: 'system-namespace' };
  const nsValue = input.namespaceLabels.get(INJECTION_NAMESPACE_LABEL);
  if (nsValue === 'disabled') return { inject: false, reason: 'namespace-disabled' };
  const own = input.podLabels.get(INJECT_POD_KEY) ?? input.podAnnotations.get(INJECT_POD_KEY);
  if (own !== undefined) {
    const v = own.toLowerCase();
    if (v === 'false' || v === 'n' || v === 'no' || v === 'off') return { inject: false, reason: 'pod-opt-out' };
    if (v === 'true' || v === 'y' || v === 'yes' || v === 'on') return { inject: true, reason: 'pod-opt-in' };
  }
  if (nsValue === 'enabled') return { inject: true, reason: 'namespace-enabled' };
  return { inject: false, reason: 'not-selected' };
}

/** A pod that carries a sidecar (injected by us, or by Istio before): its node's ztunnel leaves it alone. */
export function hasSidecar(podAnnotations: StringMap, containerNames: readonly string[]): boolean {
  return podAnnotations.has(SIDECAR_STATUS_ANNOTATION) || containerNames.includes(SIDECAR_CONTAINER);
}

/**
 * A pod whose sidecar terminates HBONE (Ferry's, or an Istio sidecar labelled for it): peers send HBONE
 * straight to its 15008, and no ztunnel wraps its traffic a second time.
 */
export function sidecarTerminatesHbone(
  podLabels: StringMap,
  podAnnotations: StringMap,
  containers: readonly string[],
): boolean {
  return hasSidecar(podAnnotations, containers) && podLabels.get(TUNNEL_LABEL) === TUNNEL_LABEL_HTTP;
}

/** The annotation an injected pod carries (Istio's shape: what the injector added). */
export function sidecarStatusAnnotation(): string {
  return JSON.stringify({ initContainers: [], containers: [SIDECAR_CONTAINER], volumes: [], imagePullSecrets: [] });
}

/** The labels and annotations an injected pod gets on top of its own. */
export function injectedMetadata(
  labels: StringMap,
  annotations: StringMap,
): { labels: Map<string, string>; annotations: Map<string, string> } {
  return {
    labels: new Map([...labels, [TUNNEL_LABEL, TUNNEL_LABEL_HTTP]]),
    annotations: new Map([...annotations, [SIDECAR_STATUS_ANNOTATION, sidecarStatusAnnotation()]]),
  };
}
