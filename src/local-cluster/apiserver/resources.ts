// The kinds this API server serves: the built-in table (core, apps, discovery, coordination, apiextensions,
// authentication) and the kinds that CustomResourceDefinition objects add while they exist. A ResourceType is
// everything routing, discovery and storage need to know about one resource in one version. Pure.
import { isObj, type Obj } from './json.ts';

export type Verb = 'create' | 'delete' | 'deletecollection' | 'get' | 'list' | 'patch' | 'update' | 'watch';

export interface ResourceType {
  readonly group: string;
  readonly version: string;
  /** Plural, lowercase: the URL segment (`pods`, `httproutes`). */
  readonly resource: string;
  readonly singular: string;
  readonly kind: string;
  readonly listKind: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  readonly categories: readonly string[];
  readonly verbs: readonly Verb[];
  /** Kinds with a status subresource: main writes keep the stored status, /status writes change only it. */
  readonly statusSubresource: boolean;
  readonly scaleSubresource: boolean;
  /** Served from a CustomResourceDefinition (strategic merge patch is refused, as for real CRs). */
  readonly custom: boolean;
  /** Only `create` and nothing is stored (TokenReview). */
  readonly virtual: boolean;
}

/** `apiVersion` as objects carry it: `v1` for the core group, `group/version` otherwise. */
export function apiVersionOf(t: { group: string; version: string }): string {
  return t.group === '' ? t.version : `${t.group}/${t.version}`;
}

/** Storage key of a resource, the same for all its versions: `apps/deployments`, `/pods`. */
export function storageKeyOf(t: { group: string; resource: string }): string {
  return `${t.group}/${t.resource}`;
}

/** `deployments.apps`, `pods`: how the real server names a resource in messages. */
export function qualifiedName(t: { group: string; resource: string }): string {
  return t.group === '' ? t.resource : `${t.resource}.${t.group}`;
}

const ALL_VERBS: readonly Verb[] = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

interface BuiltinSpec {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly shortNames?: readonly string[];
  readonly status?: boolean;
  readonly scale?: boolean;
  readonly verbs?: readonly Verb[];
  readonly virtual?: boolean;
  readonly categories?: readonly string[];
}

function builtin(s: BuiltinSpec): ResourceType {
  return {
    group: s.group,
    version: s.version,
    resource: s.resource,
    singular: s.kind.toLowerCase(),
    kind: s.kind,
    listKind: `${s.kind}List`,
    namespaced: s.namespaced,
    shortNames: s.shortNames ?? [],
    categories: s.categories ?? [],
    verbs: s.verbs ?? ALL_VERBS,
    statusSubresource: s.status ?? false,
    scaleSubresource: s.scale ?? false,
    custom: false,
    virtual: s.virtual ?? false,
  };
}

export const BUILTIN_RESOURCES: readonly ResourceType[] = [
  builtin({
    group: '',
    version: 'v1',
    resource: 'namespaces',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    status: true,
  }),
  builtin({
    group: '',
    version: 'v1',
    resource: 'pods',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    status: true,
    categories: ['all'],
  }),
  builtin({
    group: '',
    version: 'v1',
    resource: 'services',
    kind: 'Service',
    namespaced: true,
    shortNames: ['svc'],
    status: true,
    categories: ['all'],
  }),
  builtin({
    group: '',
    version: 'v1',
    resource: 'serviceaccounts',
    kind: 'ServiceAccount',
    namespaced: true,
    shortNames: ['sa'],
  }),
  builtin({
    group: '',
    version: 'v1',
    resource: 'nodes',
    kind: 'Node',
    namespaced: false,
    shortNames: ['no'],
    status: true,
  }),
  builtin({ group: '', version: 'v1', resource: 'endpoints', kind: 'Endpoints', namespaced: true, shortNames: ['ep'] }),
  // Plain data kinds: the CA publishes its root in a ConfigMap (istio-ca-root-cert), helm keeps releases in Secrets.
  builtin({
    group: '',
    version: 'v1',
    resource: 'configmaps',
    kind: 'ConfigMap',
    namespaced: true,
    shortNames: ['cm'],
  }),
  builtin({ group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true }),
  builtin({
    group: 'discovery.k8s.io',
    version: 'v1',
    resource: 'endpointslices',
    kind: 'EndpointSlice',
    namespaced: true,
  }),
  builtin({
    group: 'apps',
    version: 'v1',
    resource: 'deployments',
    kind: 'Deployment',
    namespaced: true,
    shortNames: ['deploy'],
    status: true,
    scale: true,
    categories: ['all'],
  }),
  builtin({
    group: 'apps',
    version: 'v1',
    resource: 'replicasets',
    kind: 'ReplicaSet',
    namespaced: true,
    shortNames: ['rs'],
    status: true,
    scale: true,
    categories: ['all'],
  }),
  builtin({
    group: 'apps',
    version: 'v1',
    resource: 'daemonsets',
    kind: 'DaemonSet',
    namespaced: true,
    shortNames: ['ds'],
    status: true,
    categories: ['all'],
  }),
  builtin({ group: 'coordination.k8s.io', version: 'v1', resource: 'leases', kind: 'Lease', namespaced: true }),
  builtin({
    group: 'apiextensions.k8s.io',
    version: 'v1',
    resource: 'customresourcedefinitions',
    kind: 'CustomResourceDefinition',
    namespaced: false,
    shortNames: ['crd', 'crds'],
    status: true,
  }),
  builtin({
    group: 'authentication.k8s.io',
    version: 'v1',
    resource: 'tokenreviews',
    kind: 'TokenReview',
    namespaced: false,
    verbs: ['create'],
    virtual: true,
  }),
];

/** The served resources of one CRD object (one per served version), or [] when it is not servable. */
export function resourcesOfCrd(crd: Obj): ResourceType[] {
  const spec = crd.spec;
  if (!isObj(spec) || !isObj(spec.names) || typeof spec.group !== 'string' || !Array.isArray(spec.versions)) return [];
  const names = spec.names;
  if (typeof names.plural !== 'string' || typeof names.kind !== 'string') return [];
  const out: ResourceType[] = [];
  for (const v of spec.versions) {
    if (!isObj(v) || typeof v.name !== 'string' || v.served === false) continue;
    const sub = isObj(v.subresources) ? v.subresources : {};
    out.push({
      group: spec.group,
      version: v.name,
      resource: names.plural,
      singular: typeof names.singular === 'string' ? names.singular : names.kind.toLowerCase(),
      kind: names.kind,
      listKind: typeof names.listKind === 'string' ? names.listKind : `${names.kind}List`,
      namespaced: spec.scope !== 'Cluster',
      shortNames: stringsOf(names.shortNames),
      categories: stringsOf(names.categories),
      verbs: ALL_VERBS,
      statusSubresource: isObj(sub.status),
      scaleSubresource: isObj(sub.scale),
      custom: true,
      virtual: false,
    });
  }
  return out;
}

function stringsOf(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** All resources currently served: built-ins plus those of the given CRD objects (built-ins win clashes). */
export class ResourceRegistry {
  #byPath = new Map<string, ResourceType>(); // `group/version/resource`
  #all: ResourceType[] = [];

  constructor(crds: Iterable<Obj>) {
    this.rebuild(crds);
  }

  rebuild(crds: Iterable<Obj>): void {
    const all = [...BUILTIN_RESOURCES];
    const byPath = new Map<string, ResourceType>();
    for (const t of all) byPath.set(`${t.group}/${t.version}/${t.resource}`, t);
    for (const crd of crds) {
      for (const t of resourcesOfCrd(crd)) {
        const key = `${t.group}/${t.version}/${t.resource}`;
        if (byPath.has(key)) continue;
        byPath.set(key, t);
        all.push(t);
      }
    }
    this.#byPath = byPath;
    this.#all = all;
  }

  find(group: string, version: string, resource: string): ResourceType | undefined {
    return this.#byPath.get(`${group}/${version}/${resource}`);
  }

  all(): readonly ResourceType[] {
    return this.#all;
  }

  /** Groups in discovery order (built-in first), each with its versions, preferred first. */
  groups(): { name: string; versions: string[] }[] {
    const groups = new Map<string, string[]>();
    for (const t of this.#all) {
      if (t.group === '') continue;
      const versions = groups.get(t.group) ?? [];
      if (!versions.includes(t.version)) versions.push(t.version);
      groups.set(t.group, versions);
    }
    return [...groups].map(([name, versions]) => ({ name, versions: versions.sort(compareVersions) }));
  }
}

// Kubernetes version priority: GA > beta > alpha, higher numbers first (v1 > v1beta1 > v1alpha2).
function compareVersions(a: string, b: string): number {
  const rank = (v: string): [number, number, number] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (m === null) return [3, 0, 0];
    const stage = m[2] === undefined ? 0 : m[2] === 'beta' ? 1 : 2;
    return [stage, -Number(m[1]), -Number(m[3] ?? 0)];
  };
  const [ra, rb] = [rank(a), rank(b)];
  for (let i = 0; i < 3; i++) if (ra[i] !== rb[i]) return (ra[i] ?? 0) - (rb[i] ?? 0);
  return a < b ? -1 : a > b ? 1 : 0;
}
