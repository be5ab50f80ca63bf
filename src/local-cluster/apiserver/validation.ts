// Validation of objects before they are stored, as the real API server would refuse them for the fields
// Ferry reads: names (DNS label/subdomain per kind), label and annotation syntax, selectors, ports. Kinds the
// controller reads go through its own parser (src/controller/sources/k8s-parse.ts), so the API refuses what
// the controller would refuse; its diagnostics (which name the field) become 422 causes. Pure.
import { parseK8sObject } from '../../controller/sources/k8s-parse.ts';
import { type NameRule, ObjectReader, q } from '../../controller/sources/k8s-reader.ts';
import type { Diagnostic } from '../../controller/sources/types.ts';
import { isObj, metaOf, type Obj, own } from './json.ts';
import type { ResourceType } from './resources.ts';
import type { StatusCause } from './status.ts';

const ORIGIN = { file: '', line: null } as const;

/** Kinds validated by the controller's own parser (same names as its KINDS table). */
const CONTROLLER_KINDS = new Set([
  'Namespace',
  'Pod',
  'Service',
  'ServiceAccount',
  'Deployment',
  'AuthorizationPolicy',
  'PeerAuthentication',
  'Gateway',
  'HTTPRoute',
  'ReferenceGrant',
]);
const CONTROLLER_GROUPS = new Set(['', 'apps', 'security.istio.io', 'gateway.networking.k8s.io']);

function nameRuleOf(kind: string): NameRule {
  // Namespaces and Services become DNS names of their own, so they are labels, not subdomains.
  if (kind === 'Namespace') return 'dns-label';
  if (kind === 'Service') return 'dns-1035-label';
  return 'dns-subdomain';
}

/** The causes of a 422 for `obj` (already carrying its final name and namespace), [] when valid. */
export function validateObject(t: ResourceType, obj: Obj): StatusCause[] {
  const r = new ObjectReader('', ORIGIN);
  const meta = metaOf(obj);
  r.name(own(meta, 'name'), 'metadata.name', nameRuleOf(t.kind));
  r.labels(own(meta, 'labels'), 'metadata.labels', 'labels');
  r.labels(own(meta, 'annotations'), 'metadata.annotations', 'annotations');
  const diagnostics: Diagnostic[] = [...r.diagnostics];
  if (diagnostics.length === 0) {
    if (CONTROLLER_KINDS.has(t.kind) && CONTROLLER_GROUPS.has(t.group)) {
      const ns = own(meta, 'namespace');
      const parsed = parseK8sObject(obj, {
        origin: ORIGIN,
        sequence: 0,
        defaultNamespace: typeof ns === 'string' ? ns : 'default',
      });
      diagnostics.push(...parsed.diagnostics.filter((d) => d.severity === 'error'));
    }
    const extra = new ObjectReader('', ORIGIN);
    validateKind(extra, t, obj);
    diagnostics.push(...extra.diagnostics.filter((d) => d.severity === 'error'));
  }
  return diagnostics.map(toCause);
}

function toCause(d: Diagnostic): StatusCause {
  const reason =
    d.code === 'FERRY_MANIFEST_DUPLICATE'
      ? 'FieldValueDuplicate'
      : d.message.startsWith('missing') || d.message.includes('needs')
        ? 'FieldValueRequired'
        : 'FieldValueInvalid';
  return { reason, message: `Invalid value: ${d.message}`, field: d.field };
}

function validateKind(r: ObjectReader, t: ResourceType, obj: Obj): void {
  const spec = own(obj, 'spec');
  switch (t.kind) {
    case 'Service':
      uniquePorts(r, spec);
      return;
    case 'EndpointSlice':
      validateEndpointSlice(r, obj);
      return;
    case 'Lease':
      validateLease(r, spec);
      return;
    case 'CustomResourceDefinition':
      validateCrd(r, obj);
      return;
    case 'GatewayClass':
      if (t.group === 'gateway.networking.k8s.io') {
        const s = r.map(spec, 'spec');
        if (s !== null) r.string(own(s, 'controllerName'), 'spec.controllerName');
      }
      return;
    case 'GRPCRoute':
    case 'TCPRoute':
    case 'HTTPRoute':
      if (t.group === 'gateway.networking.k8s.io') routeRefs(r, spec);
      return;
    default:
      return;
  }
}

// Two ports with the same number and protocol: the real server answers "Duplicate value".
function uniquePorts(r: ObjectReader, spec: unknown): void {
  if (!isObj(spec) || !Array.isArray(spec.ports)) return;
  const seen = new Set<string>();
  spec.ports.forEach((p, i) => {
    if (!isObj(p)) return;
    const key = `${String(p.port)}/${typeof p.protocol === 'string' ? p.protocol : 'TCP'}`;
    if (seen.has(key)) r.fail('FERRY_MANIFEST_DUPLICATE', `spec.ports[${i}]`, `duplicate port ${key}`);
    seen.add(key);
  });
}

function validateEndpointSlice(r: ObjectReader, obj: Obj): void {
  const addressType = own(obj, 'addressType');
  if (addressType !== 'IPv4' && addressType !== 'IPv6' && addressType !== 'FQDN') {
    r.fail('FERRY_MANIFEST_INVALID_FIELD', 'addressType', `must be IPv4, IPv6 or FQDN, got ${q(addressType)}`);
  }
  (r.list(own(obj, 'endpoints'), 'endpoints') ?? []).forEach((e, i) => {
    const m = r.map(e, `endpoints[${i}]`);
    if (m === null) return;
    const addrs = r.stringList(own(m, 'addresses'), `endpoints[${i}].addresses`);
    if (addrs !== null && (addrs.length < 1 || addrs.length > 100)) {
      r.fail('FERRY_MANIFEST_INVALID_FIELD', `endpoints[${i}].addresses`, 'must have 1 to 100 addresses');
    }
  });
  (r.list(own(obj, 'ports'), 'ports') ?? []).forEach((p, i) => {
    const m = r.map(p, `ports[${i}]`);
    if (m === null) return;
    const port = own(m, 'port');
    if (port !== undefined && port !== null) r.port(port, `ports[${i}].port`);
    r.protocol(own(m, 'protocol'), `ports[${i}].protocol`);
  });
}

function validateLease(r: ObjectReader, spec: unknown): void {
  const s = r.optMap(spec, 'spec');
  if (s === null) return;
  const holder = own(s, 'holderIdentity');
  if (holder !== undefined && holder !== null) r.string(holder, 'spec.holderIdentity');
  for (const f of ['leaseDurationSeconds', 'leaseTransitions']) {
    const v = own(s, f);
    if (v !== undefined && v !== null)
      r.integer(v, `spec.${f}`, f === 'leaseTransitions' ? 0 : 1, 2 ** 31 - 1, 'FERRY_MANIFEST_INVALID_FIELD');
  }
}

function validateCrd(r: ObjectReader, obj: Obj): void {
  const s = r.map(own(obj, 'spec'), 'spec');
  if (s === null) return;
  const group = r.name(own(s, 'group'), 'spec.group', 'dns-subdomain');
  const names = r.map(own(s, 'names'), 'spec.names');
  const plural = names === null ? null : r.name(own(names, 'plural'), 'spec.names.plural', 'dns-label');
  if (names !== null) {
    const kind = r.string(own(names, 'kind'), 'spec.names.kind');
    if (kind !== null && !/^[A-Z][A-Za-z0-9]*$/.test(kind)) {
      r.fail('FERRY_MANIFEST_INVALID_FIELD', 'spec.names.kind', `${q(kind)} must be a CamelCase identifier`);
    }
  }
  const scope = own(s, 'scope');
  if (scope !== 'Namespaced' && scope !== 'Cluster') {
    r.fail('FERRY_MANIFEST_INVALID_FIELD', 'spec.scope', `must be Namespaced or Cluster, got ${q(scope)}`);
  }
  const versions = r.list(own(s, 'versions'), 'spec.versions') ?? [];
  if (versions.length === 0) r.fail('FERRY_MANIFEST_INVALID_FIELD', 'spec.versions', 'needs at least one version');
  let storage = 0;
  versions.forEach((v, i) => {
    const m = r.map(v, `spec.versions[${i}]`);
    if (m === null) return;
    r.name(own(m, 'name'), `spec.versions[${i}].name`, 'dns-label');
    if (own(m, 'storage') === true) storage++;
  });
  if (versions.length > 0 && storage !== 1) {
    r.fail('FERRY_MANIFEST_INVALID_FIELD', 'spec.versions', 'exactly one version must be the storage version');
  }
  const name = own(metaOf(obj), 'name');
  if (group !== null && plural !== null && name !== `${plural}.${group}`) {
    r.fail(
      'FERRY_MANIFEST_INVALID_NAME',
      'metadata.name',
      `must be spec.names.plural+"."+spec.group (${plural}.${group})`,
    );
  }
}

function routeRefs(r: ObjectReader, spec: unknown): void {
  const s = r.optMap(spec, 'spec');
  if (s === null) return;
  (r.list(own(s, 'parentRefs'), 'spec.parentRefs') ?? []).forEach((p, i) => {
    const m = r.map(p, `spec.parentRefs[${i}]`);
    if (m !== null) r.string(own(m, 'name'), `spec.parentRefs[${i}].name`);
  });
}
