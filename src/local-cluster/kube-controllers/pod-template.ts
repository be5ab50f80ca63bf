// Pod templates of workloads: the template hash (the `pod-template-hash` / `controller-revision-hash`
// label value), template equality ignoring that label, and the Pod a controller creates from a template.
// The hash is FNV-1a (32 bit) of the template's canonical JSON and the collision count, written with the
// same consonant-and-digit alphabet Kubernetes uses (no vowels: no words in names). Pure.
import { isJson, type Json } from '../../kube/client.ts';
import { controllerRef, specOf } from './objects.ts';

export const POD_TEMPLATE_HASH = 'pod-template-hash';
export const CONTROLLER_REVISION_HASH = 'controller-revision-hash';
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** JSON with object keys sorted, so equal templates hash equally whatever their key order. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isJson(v)) {
    const keys = Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Each character of the decimal text mapped into the safe alphabet (Kubernetes' SafeEncodeString). */
export function safeEncode(text: string): string {
  return [...text].map((c) => SAFE_ALPHABET[c.charCodeAt(0) % SAFE_ALPHABET.length]).join('');
}

export function templateHash(template: unknown, collisionCount = 0): string {
  const base = canonicalJson(withoutHashLabels(template));
  return safeEncode(String(fnv1a32(collisionCount === 0 ? base : `${base}#${collisionCount}`)));
}

/** The template without the hash labels a controller added (to compare an RS's with its Deployment's). */
export function withoutHashLabels(template: unknown): unknown {
  if (!isJson(template) || !isJson(template.metadata) || !isJson(template.metadata.labels)) return template;
  const labels = { ...template.metadata.labels };
  delete labels[POD_TEMPLATE_HASH];
  delete labels[CONTROLLER_REVISION_HASH];
  return { ...template, metadata: { ...template.metadata, labels } };
}

export function templatesEqual(a: unknown, b: unknown): boolean {
  return canonicalJson(withoutHashLabels(a)) === canonicalJson(withoutHashLabels(b));
}

/** The template with one more label (the hash). */
export function withTemplateLabel(template: Json, key: string, value: string): Json {
  const meta = isJson(template.metadata) ? template.metadata : {};
  const labels = isJson(meta.labels) ? meta.labels : {};
  return { ...template, metadata: { ...meta, labels: { ...labels, [key]: value } } };
}

/** The Pod a controller (`owner`, of `ownerApiVersion`/`ownerKind`) creates from its template. */
export function podFromTemplate(
  owner: Json,
  ownerApiVersion: string,
  ownerKind: string,
  template: Json,
  nodeName?: string,
): Json {
  const meta = isJson(template.metadata) ? template.metadata : {};
  const ownerMeta = isJson(owner.metadata) ? owner.metadata : {};
  const spec = specOf(template);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${String(ownerMeta.name)}-`,
      namespace: ownerMeta.namespace,
      labels: isJson(meta.labels) ? meta.labels : {},
      ...(isJson(meta.annotations) ? { annotations: meta.annotations } : {}),
      ownerReferences: [controllerRef(ownerApiVersion, ownerKind, owner)],
    },
    spec: nodeName === undefined ? spec : { ...spec, nodeName },
  };
}
