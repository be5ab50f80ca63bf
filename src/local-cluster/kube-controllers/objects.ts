// Small readers of the API objects the kube-controllers act on (metadata, labels, owners, pod readiness),
// shared by the scheduler and the workload planners. Pure.
import { isJson, type Json } from '../../kube/client.ts';

export function metaOf(o: Json): Json {
  return isJson(o.metadata) ? o.metadata : {};
}

export function nameOf(o: Json): string {
  const n = metaOf(o).name;
  return typeof n === 'string' ? n : '';
}

export function namespaceOf(o: Json): string {
  const n = metaOf(o).namespace;
  return typeof n === 'string' ? n : '';
}

export function uidOf(o: Json): string {
  const u = metaOf(o).uid;
  return typeof u === 'string' ? u : '';
}

export function labelsOf(o: Json): Record<string, string> {
  const l = metaOf(o).labels;
  const out: Record<string, string> = {};
  if (isJson(l)) for (const [k, v] of Object.entries(l)) if (typeof v === 'string') out[k] = v;
  return out;
}

export function specOf(o: Json): Json {
  return isJson(o.spec) ? o.spec : {};
}

export function statusOf(o: Json): Json {
  return isJson(o.status) ? o.status : {};
}

export function isDeleting(o: Json): boolean {
  return typeof metaOf(o).deletionTimestamp === 'string';
}

export function generationOf(o: Json): number {
  const g = metaOf(o).generation;
  return typeof g === 'number' ? g : 0;
}

export function creationOf(o: Json): string {
  const c = metaOf(o).creationTimestamp;
  return typeof c === 'string' ? c : '';
}

export interface OwnerRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
  readonly controller?: boolean;
}

export function ownersOf(o: Json): OwnerRef[] {
  const refs = metaOf(o).ownerReferences;
  if (!Array.isArray(refs)) return [];
  return refs.filter(isJson).flatMap((r) =>
    typeof r.kind === 'string' && typeof r.uid === 'string' && typeof r.name === 'string'
      ? [
          {
            apiVersion: String(r.apiVersion ?? ''),
            kind: r.kind,
            name: r.name,
            uid: r.uid,
            controller: r.controller === true,
          },
        ]
      : [],
  );
}

/** The owner reference with controller: true, if any. */
export function controllerOf(o: Json): OwnerRef | undefined {
  return ownersOf(o).find((r) => r.controller === true);
}

export function controllerRef(
  apiVersion: string,
  kind: string,
  owner: Json,
): OwnerRef & { blockOwnerDeletion: boolean } {
  return { apiVersion, kind, name: nameOf(owner), uid: uidOf(owner), controller: true, blockOwnerDeletion: true };
}

export function podPhase(pod: Json): string {
  const p = statusOf(pod).phase;
  return typeof p === 'string' ? p : 'Pending';
}

/** Counted by a controller: not being deleted and not finished. */
export function isActivePod(pod: Json): boolean {
  const phase = podPhase(pod);
  return !isDeleting(pod) && phase !== 'Succeeded' && phase !== 'Failed';
}

export function isPodReady(pod: Json): boolean {
  const conditions = Array.isArray(statusOf(pod).conditions) ? (statusOf(pod).conditions as unknown[]) : [];
  return conditions.some((c) => isJson(c) && c.type === 'Ready' && c.status === 'True');
}

/** `matchLabels` (and `matchExpressions` In/NotIn/Exists/DoesNotExist) of a LabelSelector against labels. */
export function selectorMatches(selector: unknown, labels: Readonly<Record<string, string>>): boolean {
  if (!isJson(selector)) return false;
  const match = isJson(selector.matchLabels) ? selector.matchLabels : {};
  const exprs = Array.isArray(selector.matchExpressions) ? selector.matchExpressions.filter(isJson) : [];
  if (Object.keys(match).length === 0 && exprs.length === 0) return false; // an empty selector selects nothing here
  for (const [k, v] of Object.entries(match)) if (labels[k] !== v) return false;
  for (const e of exprs) {
    const key = String(e.key);
    const values = Array.isArray(e.values) ? e.values.map(String) : [];
    const has = Object.hasOwn(labels, key);
    switch (e.operator) {
      case 'In':
        if (!has || !values.includes(labels[key] ?? '')) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[key] ?? '')) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
