// Name and port rules and defaults shared by every wire form of the mesh model (the static YAML readers
// in local-config/, the xDS conversion): kept free of the YAML library so the xDS path does not load it.

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
export const DEFAULT_SERVICE_ACCOUNT = 'default';
export const DEFAULT_CLUSTER_ID = 'Kubernetes';
/** Istio's canonical revision when a pod has no version label. */
export const DEFAULT_CANONICAL_REVISION = 'latest';

export const MAX_PORT = 65535;
/** Istio's HBONE port; the default for a waypoint's hboneMtlsPort. */
export const HBONE_PORT = 15008;

// Kubernetes namespace: an RFC 1123 label.
export const NAMESPACE_RE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
// Object names, hostnames, service accounts: no whitespace, no '/' (it separates key parts), no control chars.
export const NAME_RE = /^[^\s/\p{Cc}]{1,253}$/u;

/** Same rules as the YAML readers, for other wire forms (the xDS client's proto conversion). */
export function isNamespace(text: string): boolean {
  return NAMESPACE_RE.test(text);
}

/** A non-empty name without whitespace, '/' or control characters. */
export function isName(text: string): boolean {
  return NAME_RE.test(text);
}
