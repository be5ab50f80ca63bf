// Validation of rendered Kubernetes objects against the Kubernetes OpenAPI schema, for the Helm chart's tests.
// Two maintained, generated sources, no hand-written schema:
// - kubernetes-models (tommy351): validators generated from the Kubernetes v1.34 OpenAPI spec (and, in
//   @kubernetes-models/gateway-api and /prometheus-operator, from those projects' CRDs): types, required
//   fields, enums, formats (int32, quantities, …).
// - @kubernetes/client-node's generated model metadata (attributeTypeMap, also from the OpenAPI spec): the
//   OpenAPI schemas of built-in kinds do not forbid unknown fields, while the API server refuses them with
//   fieldValidation=Strict (kubectl's default since 1.27); `unknownFields` walks an object along that
//   metadata and reports every field the kind does not have, so a misspelt or mis-indented key is caught.
import * as k8s from '@kubernetes/client-node';

interface Model {
  validate(): void;
}
// `never`: each model takes its own typed shape; the objects here are untyped YAML, validated at run time.
type ModelCtor = new (data: never) => Model;

// Every kind the chart renders. A kind missing here fails validation: nothing is rendered unchecked.
const MODELS: Record<string, () => Promise<ModelCtor>> = {
  'v1/ServiceAccount': async () => (await import('kubernetes-models/v1/ServiceAccount')).ServiceAccount,
  'v1/Service': async () => (await import('kubernetes-models/v1/Service')).Service,
  'v1/ConfigMap': async () => (await import('kubernetes-models/v1/ConfigMap')).ConfigMap,
  'apps/v1/Deployment': async () => (await import('kubernetes-models/apps/v1/Deployment')).Deployment,
  'apps/v1/DaemonSet': async () => (await import('kubernetes-models/apps/v1/DaemonSet')).DaemonSet,
  'policy/v1/PodDisruptionBudget': async () =>
    (await import('kubernetes-models/policy/v1/PodDisruptionBudget')).PodDisruptionBudget,
  'rbac.authorization.k8s.io/v1/ClusterRole': async () =>
    (await import('kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole')).ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': async () =>
    (await import('kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding')).ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': async () =>
    (await import('kubernetes-models/rbac.authorization.k8s.io/v1/Role')).Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': async () =>
    (await import('kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding')).RoleBinding,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': async () =>
    (await import('kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition')).CustomResourceDefinition,
  'gateway.networking.k8s.io/v1/GatewayClass': async () =>
    (await import('@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewayClass')).GatewayClass,
  'monitoring.coreos.com/v1/ServiceMonitor': async () =>
    (await import('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor')).ServiceMonitor,
  'monitoring.coreos.com/v1/PodMonitor': async () =>
    (await import('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor')).PodMonitor,
};

/** The @kubernetes/client-node model of a built-in kind (V1Deployment, …); null for custom resources. */
function clientModelName(apiVersion: string, kind: string): string | null {
  const version = apiVersion.includes('/') ? apiVersion.slice(apiVersion.indexOf('/') + 1) : apiVersion;
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  const builtIn = ['', 'apps', 'policy', 'rbac.authorization.k8s.io', 'apiextensions.k8s.io'];
  if (!builtIn.includes(group)) return null;
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
}

interface Attribute {
  readonly name: string;
  readonly baseName: string;
  readonly type: string;
}

function attributesOf(type: string): readonly Attribute[] | null {
  const model = (k8s as unknown as Record<string, { getAttributeTypeMap?: () => Attribute[] }>)[type];
  return model?.getAttributeTypeMap?.() ?? null;
}

/** Paths of fields in `value` that the client model `type` does not define (the API server's Strict check). */
export function unknownFields(value: unknown, type: string, path = ''): string[] {
  if (value === null || value === undefined) return [];
  const array = /^Array<(.+)>$/.exec(type);
  if (array !== null) {
    if (!Array.isArray(value)) return [];
    return value.flatMap((v, i) => unknownFields(v, array[1] as string, `${path}[${i}]`));
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map !== null) {
    if (typeof value !== 'object') return [];
    return Object.entries(value).flatMap(([k, v]) => unknownFields(v, map[1] as string, `${path}.${k}`));
  }
  const attributes = attributesOf(type);
  if (attributes === null || typeof value !== 'object' || Array.isArray(value)) return []; // string, number, any, …
  const out: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const attr = attributes.find((a) => a.baseName === key);
    if (attr === undefined) out.push(`${path}.${key}`.replace(/^\./, ''));
    else out.push(...unknownFields(v, attr.type, `${path}.${key}`));
  }
  return out;
}

export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly [k: string]: unknown };
  readonly [k: string]: unknown;
}

/** Problems of one object ([] when valid): schema violations, then unknown fields. */
export async function validateObject(obj: KubeObject): Promise<string[]> {
  const key = `${obj.apiVersion}/${obj.kind}`;
  const load = MODELS[key];
  const what = `${obj.kind} ${obj.metadata?.name ?? '?'}`;
  if (load === undefined) return [`${what}: no schema for ${key} (add it to test/helpers/k8s-schema.ts)`];
  const problems: string[] = [];
  const Ctor = await load();
  try {
    new Ctor(structuredClone(obj) as never).validate();
  } catch (err) {
    problems.push(`${what}: ${(err as Error).message}`);
  }
  const clientModel = clientModelName(obj.apiVersion, obj.kind);
  if (clientModel !== null) {
    if (attributesOf(clientModel) === null) problems.push(`${what}: no client model ${clientModel}`);
    for (const field of unknownFields(obj, clientModel)) problems.push(`${what}: unknown field ${field}`);
  }
  return problems;
}
