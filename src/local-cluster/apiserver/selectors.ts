// Label and field selectors of list and watch requests (`?labelSelector=`, `?fieldSelector=`), parsed with
// Kubernetes' grammar: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a)`, `k` (exists), `!k` (does not
// exist), comma-separated and ANDed. Field selectors support only the fields the real server registers for
// the kind (metadata.name/namespace everywhere, a few pod fields); anything else is a 400. Pure.
import { labelKeyProblem, labelValueProblem } from '../../controller/sources/k8s-reader.ts';
import { isObj, metaOf, type Obj, own } from './json.ts';

export type LabelRequirement =
  | { readonly op: 'eq' | 'neq'; readonly key: string; readonly value: string }
  | { readonly op: 'in' | 'notin'; readonly key: string; readonly values: readonly string[] }
  | { readonly op: 'exists' | 'notexists'; readonly key: string };

export interface FieldRequirement {
  readonly op: 'eq' | 'neq';
  readonly field: string;
  readonly value: string;
}

export type SelectorResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string };

const MAX_SELECTOR_LENGTH = 8192;

/** Parses a label selector string; '' selects everything. */
export function parseLabelSelector(text: string): SelectorResult<LabelRequirement[]> {
  if (text.length > MAX_SELECTOR_LENGTH) return { ok: false, error: `selector longer than ${MAX_SELECTOR_LENGTH}` };
  const out: LabelRequirement[] = [];
  for (const part of splitTopLevel(text)) {
    const s = part.trim();
    if (s === '') {
      if (text.trim() === '') continue;
      return { ok: false, error: `empty requirement in ${JSON.stringify(text)}` };
    }
    const r = parseLabelRequirement(s);
    if (!r.ok) return r;
    out.push(r.value);
  }
  return { ok: true, value: out };
}

// Commas separate requirements except inside `( … )` of in/notin.
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth = Math.max(0, depth - 1);
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function parseLabelRequirement(s: string): SelectorResult<LabelRequirement> {
  const setMatch = /^([^\s!=(),]+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(s);
  if (setMatch !== null) {
    const [, key = '', op, list = ''] = setMatch;
    const values = list
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v !== '');
    if (values.length === 0) return { ok: false, error: `${op} needs at least one value in ${JSON.stringify(s)}` };
    const problem = keyProblem(key) ?? values.map(valueProblem).find((p) => p !== null) ?? null;
    if (problem !== null) return { ok: false, error: problem };
    return { ok: true, value: { op: op === 'in' ? 'in' : 'notin', key, values } };
  }
  const eq = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s!=]*)$/.exec(s);
  if (eq !== null) {
    const [, key = '', op, value = ''] = eq;
    const problem = keyProblem(key) ?? valueProblem(value);
    if (problem !== null) return { ok: false, error: problem };
    return { ok: true, value: { op: op === '!=' ? 'neq' : 'eq', key, value } };
  }
  const exists = /^(!?)\s*([^\s!=(),]+)$/.exec(s);
  if (exists !== null) {
    const [, bang, key = ''] = exists;
    const problem = keyProblem(key);
    if (problem !== null) return { ok: false, error: problem };
    return { ok: true, value: { op: bang === '!' ? 'notexists' : 'exists', key } };
  }
  return { ok: false, error: `unable to parse requirement: ${JSON.stringify(s)}` };
}

function keyProblem(key: string): string | null {
  const p = labelKeyProblem(key);
  return p === null ? null : `invalid label key ${JSON.stringify(key)}: ${p}`;
}

function valueProblem(value: string): string | null {
  const p = labelValueProblem(value);
  return p === null ? null : `invalid label value ${JSON.stringify(value)}`;
}

export function matchesLabelRequirements(reqs: readonly LabelRequirement[], labels: Obj): boolean {
  for (const r of reqs) {
    const has = Object.hasOwn(labels, r.key) && typeof labels[r.key] === 'string';
    const v = has ? (labels[r.key] as string) : undefined;
    switch (r.op) {
      case 'eq':
        if (v !== r.value) return false;
        break;
      case 'neq':
        if (v === r.value) return false;
        break;
      case 'in':
        if (v === undefined || !r.values.includes(v)) return false;
        break;
      case 'notin':
        if (v !== undefined && r.values.includes(v)) return false;
        break;
      case 'exists':
        if (!has) return false;
        break;
      case 'notexists':
        if (has) return false;
        break;
    }
  }
  return true;
}

const COMMON_FIELDS = ['metadata.name', 'metadata.namespace'];
const FIELDS_BY_KIND: Readonly<Record<string, readonly string[]>> = {
  Pod: [
    'spec.nodeName',
    'spec.restartPolicy',
    'spec.schedulerName',
    'spec.serviceAccountName',
    'spec.hostNetwork',
    'status.phase',
    'status.podIP',
    'status.nominatedNodeName',
  ],
  Namespace: ['status.phase'],
  Node: ['spec.unschedulable'],
};

/** Parses a field selector for `kind`; only fields the kind supports (400 otherwise, as the real server). */
export function parseFieldSelector(text: string, kind: string): SelectorResult<FieldRequirement[]> {
  if (text.length > MAX_SELECTOR_LENGTH) return { ok: false, error: `selector longer than ${MAX_SELECTOR_LENGTH}` };
  const supported = [...COMMON_FIELDS, ...(FIELDS_BY_KIND[kind] ?? [])];
  const out: FieldRequirement[] = [];
  for (const part of text.split(',')) {
    const s = part.trim();
    if (s === '') continue;
    const m = /^([^!=\s]+)\s*(==|=|!=)\s*(.*)$/.exec(s);
    if (m === null) return { ok: false, error: `invalid selector: ${JSON.stringify(s)}; can't understand it` };
    const [, field = '', op, value = ''] = m;
    if (!supported.includes(field)) {
      return { ok: false, error: `field label not supported: ${field}` };
    }
    out.push({ op: op === '!=' ? 'neq' : 'eq', field, value: value.trim() });
  }
  return { ok: true, value: out };
}

export function matchesFieldRequirements(reqs: readonly FieldRequirement[], obj: Obj): boolean {
  for (const r of reqs) {
    const v = fieldValue(obj, r.field);
    if ((r.op === 'eq') !== (v === r.value)) return false;
  }
  return true;
}

// The string form of a dotted field path; absent fields are '' (so `spec.nodeName=` selects unbound pods).
function fieldValue(obj: Obj, path: string): string {
  if (path === 'metadata.namespace') {
    const ns = own(metaOf(obj), 'namespace');
    return typeof ns === 'string' ? ns : '';
  }
  let cur: unknown = obj;
  for (const part of path.split('.')) cur = isObj(cur) ? own(cur, part) : undefined;
  if (typeof cur === 'string') return cur;
  if (typeof cur === 'boolean' || typeof cur === 'number') return String(cur);
  return '';
}
