// CustomResourceDefinitions of the Istio and Gateway API kinds Ferry reads, generated here so the local
// cluster can preinstall them (`preinstallCrds`) and tests can install them later. Names, scopes, versions and
// subresources follow the upstream CRDs; the schemas keep unknown fields, since the API server validates these
// kinds with Ferry's own parsers (validation.ts) rather than with OpenAPI schemas.
import type { Obj } from './json.ts';

interface CrdSpec {
  readonly group: string;
  readonly kind: string;
  readonly plural: string;
  readonly shortNames?: readonly string[];
  readonly scope: 'Namespaced' | 'Cluster';
  /** Served versions, storage version first. */
  readonly versions: readonly string[];
  readonly status: boolean;
  readonly categories?: readonly string[];
}

const ISTIO = 'security.istio.io';
const GATEWAY = 'gateway.networking.k8s.io';

export const FERRY_CRDS: readonly CrdSpec[] = [
  {
    group: ISTIO,
    kind: 'AuthorizationPolicy',
    plural: 'authorizationpolicies',
    shortNames: ['ap'],
    scope: 'Namespaced',
    versions: ['v1', 'v1beta1'],
    status: true,
    categories: ['istio-io', 'security-istio-io'],
  },
  {
    group: ISTIO,
    kind: 'PeerAuthentication',
    plural: 'peerauthentications',
    shortNames: ['pa'],
    scope: 'Namespaced',
    versions: ['v1', 'v1beta1'],
    status: true,
    categories: ['istio-io', 'security-istio-io'],
  },
  {
    group: GATEWAY,
    kind: 'GatewayClass',
    plural: 'gatewayclasses',
    shortNames: ['gc'],
    scope: 'Cluster',
    versions: ['v1', 'v1beta1'],
    status: true,
    categories: ['gateway-api'],
  },
  {
    group: GATEWAY,
    kind: 'Gateway',
    plural: 'gateways',
    shortNames: ['gtw'],
    scope: 'Namespaced',
    versions: ['v1', 'v1beta1'],
    status: true,
    categories: ['gateway-api'],
  },
  {
    group: GATEWAY,
    kind: 'HTTPRoute',
    plural: 'httproutes',
    scope: 'Namespaced',
    versions: ['v1', 'v1beta1'],
    status: true,
    categories: ['gateway-api'],
  },
  {
    group: GATEWAY,
    kind: 'GRPCRoute',
    plural: 'grpcroutes',
    scope: 'Namespaced',
    versions: ['v1'],
    status: true,
    categories: ['gateway-api'],
  },
  {
    group: GATEWAY,
    kind: 'ReferenceGrant',
    plural: 'referencegrants',
    shortNames: ['refgrant'],
    scope: 'Namespaced',
    versions: ['v1beta1', 'v1'],
    status: false,
    categories: ['gateway-api'],
  },
  {
    group: GATEWAY,
    kind: 'TCPRoute',
    plural: 'tcproutes',
    scope: 'Namespaced',
    versions: ['v1alpha2'],
    status: true,
    categories: ['gateway-api'],
  },
];

/** The CRD object for one spec (apiextensions.k8s.io/v1). */
export function crdManifest(s: CrdSpec): Obj {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${s.plural}.${s.group}`, labels: { 'app.kubernetes.io/managed-by': 'ferry' } },
    spec: {
      group: s.group,
      names: {
        kind: s.kind,
        listKind: `${s.kind}List`,
        plural: s.plural,
        singular: s.kind.toLowerCase(),
        ...(s.shortNames === undefined ? {} : { shortNames: [...s.shortNames] }),
        ...(s.categories === undefined ? {} : { categories: [...s.categories] }),
      },
      scope: s.scope,
      versions: s.versions.map((name, i) => ({
        name,
        served: true,
        storage: i === 0,
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        ...(s.status ? { subresources: { status: {} } } : {}),
      })),
    },
  };
}

/** Every CRD of FERRY_CRDS. */
export function crdManifests(): Obj[] {
  return FERRY_CRDS.map(crdManifest);
}
