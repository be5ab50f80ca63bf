// Decoded documents (from files or the Kubernetes API) → the migration's Inventory. Kinds the controller
// already validates (Namespace, Service, Deployment, Pod, AuthorizationPolicy, PeerAuthentication) go through
// its parser, so the migration reads them exactly as Ferry will; Istio networking kinds and the other Istio
// kinds are kept as written (identity + spec) for the converters. Other kinds (ConfigMaps, …) are skipped:
// they do not take part in the migration. A bad object is a problem in the inventory, never guessed at. Pure.
import { parseK8sObject } from '../controller/sources/k8s-parse.ts';
import type {
  AuthorizationPolicyObject,
  DeploymentObject,
  NamespaceObject,
  ObjectOrigin,
  PeerAuthenticationObject,
  PodObject,
  ServiceObject,
} from '../controller/sources/types.ts';
import { formatDiagnostic } from '../controller/sources/types.ts';
import { type InputProblem, type Inventory, type IstioObject, isObj } from './types.ts';

export interface InputDocument {
  readonly value: unknown;
  readonly origin: ObjectOrigin;
}

const CORE_KINDS = new Set(['Namespace', 'Service', 'Deployment', 'Pod', 'AuthorizationPolicy', 'PeerAuthentication']);
const NETWORKING = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'];
/** Istio kinds the migration reads as written, with the apiVersions Istio serves for them. */
const ISTIO_KINDS: ReadonlyMap<string, readonly string[]> = new Map([
  ['VirtualService', NETWORKING],
  ['DestinationRule', NETWORKING],
  ['Sidecar', NETWORKING],
  ['ServiceEntry', NETWORKING],
  ['WorkloadEntry', NETWORKING],
  ['Gateway', NETWORKING],
  ['EnvoyFilter', ['networking.istio.io/v1alpha3']],
  ['RequestAuthentication', ['security.istio.io/v1', 'security.istio.io/v1beta1']],
  ['WasmPlugin', ['extensions.istio.io/v1alpha1']],
  ['Telemetry', ['telemetry.istio.io/v1', 'telemetry.istio.io/v1alpha1']],
]);
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Builds the inventory; `defaultNamespace` for objects without one (kubectl's default). Never throws. */
export function buildInventory(docs: readonly InputDocument[], defaultNamespace = 'default'): Inventory {
  const namespaces: NamespaceObject[] = [];
  const services: ServiceObject[] = [];
  const deployments: DeploymentObject[] = [];
  const pods: PodObject[] = [];
  const authorizationPolicies: AuthorizationPolicyObject[] = [];
  const peerAuthentications: PeerAuthenticationObject[] = [];
  const virtualServices: IstioObject[] = [];
  const destinationRules: IstioObject[] = [];
  const otherIstio: IstioObject[] = [];
  const problems: InputProblem[] = [];
  const seen = new Set<string>();
  for (const [sequence, doc] of docs.entries()) {
    const kind = isObj(doc.value) ? doc.value.kind : undefined;
    if (typeof kind === 'string' && CORE_KINDS.has(kind)) {
      const parsed = parseK8sObject(doc.value, { origin: doc.origin, sequence, defaultNamespace });
      for (const d of parsed.diagnostics) {
        if (d.severity === 'error') {
          problems.push({
            file: doc.origin.file,
            line: doc.origin.line,
            object: d.object,
            message: formatDiagnostic(d),
          });
        }
      }
      const o = parsed.object;
      if (o === null) continue;
      const key = `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
      if (seen.has(key)) {
        problems.push(duplicate(doc.origin, key));
        continue;
      }
      seen.add(key);
      if (o.kind === 'Namespace') namespaces.push(o);
      else if (o.kind === 'Service') services.push(o);
      else if (o.kind === 'Deployment') deployments.push(o);
      else if (o.kind === 'Pod') pods.push(o);
      else if (o.kind === 'AuthorizationPolicy') authorizationPolicies.push(o);
      else if (o.kind === 'PeerAuthentication') peerAuthentications.push(o);
      continue;
    }
    if (typeof kind !== 'string' || !ISTIO_KINDS.has(kind)) continue;
    const apiVersion = isObj(doc.value) ? doc.value.apiVersion : undefined;
    if (typeof apiVersion === 'string' && apiVersion.startsWith('gateway.networking.k8s.io/')) continue; // already Gateway API
    const istio = readIstioObject(doc, kind, defaultNamespace, problems);
    if (istio === null) continue;
    const key = `${istio.kind}/${istio.namespace}/${istio.name}`;
    if (seen.has(key)) {
      problems.push(duplicate(doc.origin, key));
      continue;
    }
    seen.add(key);
    if (kind === 'VirtualService') virtualServices.push(istio);
    else if (kind === 'DestinationRule') destinationRules.push(istio);
    else otherIstio.push(istio);
  }
  return {
    namespaces,
    services,
    deployments,
    pods,
    authorizationPolicies,
    peerAuthentications,
    virtualServices,
    destinationRules,
    otherIstio,
    problems,
  };
}

function duplicate(origin: ObjectOrigin, key: string): InputProblem {
  return {
    file: origin.file,
    line: origin.line,
    object: key,
    message: `${key} is defined twice; the first one is used`,
  };
}

function readIstioObject(
  doc: InputDocument,
  kind: string,
  defaultNamespace: string,
  problems: InputProblem[],
): IstioObject | null {
  const v = doc.value as Readonly<Record<string, unknown>>;
  const meta = isObj(v.metadata) ? v.metadata : {};
  const name = meta.name;
  const ns = meta.namespace ?? defaultNamespace;
  const ref = `${kind}/${typeof ns === 'string' ? ns : '?'}/${typeof name === 'string' ? name : '?'}`;
  const fail = (message: string): null => {
    problems.push({ file: doc.origin.file, line: doc.origin.line, object: ref, message: `${ref}: ${message}` });
    return null;
  };
  const versions = ISTIO_KINDS.get(kind) ?? [];
  if (typeof v.apiVersion !== 'string' || !versions.includes(v.apiVersion)) {
    return fail(`apiVersion must be ${versions.join(' or ')}, got ${JSON.stringify(v.apiVersion)}`);
  }
  if (typeof name !== 'string' || name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    return fail('metadata.name must be a DNS-1123 subdomain');
  }
  if (typeof ns !== 'string' || ns.length > 63 || !DNS_LABEL.test(ns)) {
    return fail('metadata.namespace must be a DNS-1123 label');
  }
  const spec = v.spec ?? {};
  if (!isObj(spec)) return fail('spec must be an object');
  const labels = new Map<string, string>();
  if (isObj(meta.labels)) {
    for (const [key, value] of Object.entries(meta.labels)) if (typeof value === 'string') labels.set(key, value);
  }
  return { kind, apiVersion: v.apiVersion, namespace: ns, name, labels, spec, origin: doc.origin };
}
