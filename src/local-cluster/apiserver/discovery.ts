// API discovery documents, as kubectl and client libraries read them to map kinds and short names to
// resources: /version, /api (APIVersions), /apis (APIGroupList), /apis/<group> (APIGroup) and the
// APIResourceList of each group version, including subresources (pods/status, deployments/scale,
// serviceaccounts/token). Only the legacy (unaggregated) form is served: clients that ask for aggregated
// discovery get the legacy documents and fall back, as against older servers. Pure.
import { apiVersionOf, type ResourceRegistry, type ResourceType } from './resources.ts';

export const KUBERNETES_VERSION = { major: '1', minor: '34', gitVersion: 'v1.34.0-ferry' } as const;

export function versionInfo(): object {
  return {
    ...KUBERNETES_VERSION,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2026-01-01T00:00:00Z',
    goVersion: `node ${process.version}`,
    compiler: 'ferry',
    platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  };
}

export function coreVersions(serverAddress: string): object {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function groupOf(name: string, versions: readonly string[]): object {
  const gvs = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
  return { name, versions: gvs, preferredVersion: gvs[0] };
}

export function groupList(registry: ResourceRegistry): object {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: registry.groups().map((g) => groupOf(g.name, g.versions)),
  };
}

/** The APIGroup of `name`, or null when no resource of it is served. */
export function group(registry: ResourceRegistry, name: string): object | null {
  const g = registry.groups().find((x) => x.name === name);
  return g === undefined ? null : { kind: 'APIGroup', apiVersion: 'v1', ...groupOf(g.name, g.versions) };
}

/** The APIResourceList of one group version, or null when it serves nothing. */
export function resourceList(registry: ResourceRegistry, groupName: string, version: string): object | null {
  const types = registry.all().filter((t) => t.group === groupName && t.version === version);
  if (types.length === 0) return null;
  const resources: object[] = [];
  for (const t of types) {
    resources.push({
      name: t.resource,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: t.verbs,
      ...(t.shortNames.length > 0 ? { shortNames: t.shortNames } : {}),
      ...(t.categories.length > 0 ? { categories: t.categories } : {}),
    });
    for (const sub of subresourcesOf(t)) resources.push(sub);
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf(t0(types)), resources };
}

function t0(types: readonly ResourceType[]): ResourceType {
  return types[0] as ResourceType;
}

function subresourcesOf(t: ResourceType): object[] {
  const out: object[] = [];
  const sub = (name: string, kind: string, verbs: readonly string[], group?: string, version?: string): object => ({
    name: `${t.resource}/${name}`,
    singularName: '',
    namespaced: t.namespaced,
    kind,
    verbs,
    ...(group === undefined ? {} : { group, version }),
  });
  if (t.statusSubresource) out.push(sub('status', t.kind, ['get', 'patch', 'update']));
  if (t.scaleSubresource) out.push(sub('scale', 'Scale', ['get', 'patch', 'update'], 'autoscaling', 'v1'));
  if (t.kind === 'ServiceAccount' && t.group === '') {
    out.push(sub('token', 'TokenRequest', ['create'], 'authentication.k8s.io', 'v1'));
  }
  return out;
}
