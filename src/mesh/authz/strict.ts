// The synthetic policies that implement PeerAuthentication in ambient mode (docs/architecture.md "Policy and enrollment";
// Istio pilot ambient/authorization.go). STRICT is not a TLS setting at the ztunnel: it is a DENY of
// connections without a peer identity, i.e. plaintext arriving on 15006. Pure data builders.
import type { Authorization, Match } from '../types.ts';
import { EMPTY_MATCH } from './match.ts';

export const DEFAULT_ROOT_NAMESPACE = 'istio-system';
/** Istio's name; '_' keeps it from colliding with any Kubernetes object name. */
export const STATIC_STRICT_POLICY_NAME = 'istio_converted_static_strict';
/** Prefix Istio gives a PeerAuthentication converted to a DENY policy (port-level mTLS). */
export const CONVERTED_PEER_AUTHENTICATION_PREFIX = 'converted_peer_authentication_';

/** `<rootNamespace>/istio_converted_static_strict`: DENY any connection without a peer identity. */
export function staticStrictPolicy(rootNamespace: string = DEFAULT_ROOT_NAMESPACE): Authorization {
  return {
    name: STATIC_STRICT_POLICY_NAME,
    namespace: rootNamespace,
    scope: 'WorkloadSelector',
    action: 'Deny',
    dryRun: false,
    rules: [[[{ ...EMPTY_MATCH, notPrincipals: [{ kind: 'presence' }] }]]],
  };
}

export type MtlsMode = 'STRICT' | 'PERMISSIVE';

export interface PortLevelMtls {
  /** Namespace and name of the workload-selector PeerAuthentication. */
  readonly namespace: string;
  readonly name: string;
  /** The workload-level mode the port exceptions refine. */
  readonly defaultMode: MtlsMode;
  /** Target port → mode; ports with the default mode change nothing. */
  readonly ports: ReadonlyMap<number, MtlsMode>;
}

/**
 * DENY policy for a PeerAuthentication with port-level mTLS, or null when no port departs from the default.
 * STRICT default: deny plaintext except on the PERMISSIVE ports; PERMISSIVE default: deny plaintext on the
 * STRICT ports. When it is returned it replaces the static STRICT policy for that workload (it already
 * carries the default), since any matching DENY wins.
 */
export function portLevelMtlsPolicy(pa: PortLevelMtls): Authorization | null {
  const exceptions = [...pa.ports].filter(([, mode]) => mode !== pa.defaultMode).map(([port]) => port);
  if (exceptions.length === 0) return null;
  exceptions.sort((a, b) => a - b);
  const plaintext: Match = { ...EMPTY_MATCH, notPrincipals: [{ kind: 'presence' }] };
  const match: Match =
    pa.defaultMode === 'STRICT'
      ? { ...plaintext, notDestinationPorts: exceptions }
      : { ...plaintext, destinationPorts: exceptions };
  return {
    name: `${CONVERTED_PEER_AUTHENTICATION_PREFIX}${pa.name}`,
    namespace: pa.namespace,
    scope: 'WorkloadSelector',
    action: 'Deny',
    dryRun: false,
    rules: [[[match]]],
  };
}
