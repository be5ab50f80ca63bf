// Reading untrusted, already-YAML-decoded values into typed fields, with Kubernetes' own validation rules
// for names, labels, label selectors and ports. Every problem becomes a Diagnostic naming the object and the
// field; a reader returns null for a bad value and never throws. Pure: no I/O.
import type {
  Diagnostic,
  DiagnosticCode,
  LabelSelector,
  Labels,
  ObjectOrigin,
  PortProtocol,
  SelectorOperator,
  SelectorRequirement,
} from './types.ts';

export type Obj = { readonly [key: string]: unknown };

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Own property only: a manifest key named "constructor" or "__proto__" is never inherited behaviour. */
export function get(o: Obj, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

const DNS_LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1035_LABEL_RE = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME_RE = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
// IANA_SVC_NAME: ≤ 15 chars, lowercase alphanumerics and '-', at least one letter, no '--', no edge '-'.
const PORT_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX_LIST = 10_000; // far above anything real; bounds the work a hostile manifest can ask for

export type NameRule = 'dns-label' | 'dns-1035-label' | 'dns-subdomain';

export function nameProblem(name: string, rule: NameRule): string | null {
  switch (rule) {
    case 'dns-label':
      return name.length <= 63 && DNS_LABEL_RE.test(name)
        ? null
        : 'must be a DNS label: at most 63 lowercase letters, digits or "-", starting and ending alphanumeric';
    case 'dns-1035-label':
      return name.length <= 63 && DNS_1035_LABEL_RE.test(name)
        ? null
        : 'must be a DNS-1035 label: at most 63 lowercase letters, digits or "-", starting with a letter';
    case 'dns-subdomain':
      return name.length <= 253 && DNS_SUBDOMAIN_RE.test(name)
        ? null
        : 'must be a DNS subdomain: at most 253 lowercase letters, digits, "-" or ".", starting and ending alphanumeric';
  }
}

export function labelKeyProblem(key: string): string | null {
  const slash = key.lastIndexOf('/');
  const prefix = slash < 0 ? null : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== null && nameProblem(prefix, 'dns-subdomain') !== null) return `bad key prefix ${q(prefix)}`;
  if (name.length > 63 || !LABEL_NAME_RE.test(name)) return `bad key ${q(key)}`;
  return null;
}

export function labelValueProblem(value: string): string | null {
  return value === '' || (value.length <= 63 && LABEL_NAME_RE.test(value)) ? null : `bad label value ${q(value)}`;
}

export function portNameProblem(name: string): string | null {
  return name.length <= 15 && PORT_NAME_RE.test(name) && /[a-z]/.test(name) && !name.includes('--')
    ? null
    : `bad port name ${q(name)} (IANA service name: at most 15 lowercase letters, digits, "-", with a letter)`;
}

export function q(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a map' : typeof v;
}

/** Collects diagnostics for one object; readers return null after reporting. */
export class ObjectReader {
  readonly diagnostics: Diagnostic[] = [];
  #object: string;
  readonly #origin: ObjectOrigin;

  constructor(object: string, origin: ObjectOrigin) {
    this.#object = object;
    this.#origin = origin;
  }

  /** Renames the object once its kind/namespace/name are known. */
  identify(object: string): void {
    this.#object = object;
  }

  get failed(): boolean {
    return this.diagnostics.some((d) => d.severity === 'error');
  }

  fail(code: DiagnosticCode, field: string, message: string): null {
    this.#report('error', code, field, message);
    return null;
  }

  warn(code: DiagnosticCode, field: string, message: string): void {
    this.#report('warning', code, field, message);
  }

  #report(severity: Diagnostic['severity'], code: DiagnosticCode, field: string, message: string): void {
    const { file, line } = this.#origin;
    this.diagnostics.push({ severity, code, object: this.#object, field, message, file, line });
  }

  map(v: unknown, field: string): Obj | null {
    return isObj(v) ? v : this.fail('FERRY_MANIFEST_INVALID_FIELD', field, `expected a map, got ${q(v)}`);
  }

  /** Optional map: absent/null → empty. */
  optMap(v: unknown, field: string): Obj | null {
    return v === undefined || v === null ? {} : this.map(v, field);
  }

  list(v: unknown, field: string): readonly unknown[] | null {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) return this.fail('FERRY_MANIFEST_INVALID_FIELD', field, `expected a list, got ${q(v)}`);
    if (v.length > MAX_LIST) return this.fail('FERRY_MANIFEST_INVALID_FIELD', field, `more than ${MAX_LIST} items`);
    return v;
  }

  string(v: unknown, field: string): string | null {
    return typeof v === 'string'
      ? v
      : this.fail('FERRY_MANIFEST_INVALID_FIELD', field, `expected a string, got ${q(v)}`);
  }

  optString(v: unknown, field: string): string | null | undefined {
    return v === undefined || v === null ? undefined : this.string(v, field);
  }

  stringList(v: unknown, field: string): readonly string[] | null {
    const items = this.list(v, field);
    if (items === null) return null;
    const out: string[] = [];
    let ok = true;
    items.forEach((item, i) => {
      const s = this.string(item, `${field}[${i}]`);
      if (s === null) ok = false;
      else out.push(s);
    });
    return ok ? out : null;
  }

  integer(v: unknown, field: string, min: number, max: number, code: DiagnosticCode): number | null {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      return this.fail(code, field, `expected an integer ${min}–${max}, got ${q(v)}`);
    }
    return v;
  }

  port(v: unknown, field: string): number | null {
    return this.integer(v, field, 1, 65535, 'FERRY_MANIFEST_INVALID_PORT');
  }

  protocol(v: unknown, field: string): PortProtocol | null {
    if (v === undefined || v === null) return 'TCP';
    if (v === 'TCP' || v === 'UDP' || v === 'SCTP') return v;
    return this.fail('FERRY_MANIFEST_INVALID_PORT', field, `protocol must be TCP, UDP or SCTP, got ${q(v)}`);
  }

  name(v: unknown, field: string, rule: NameRule): string | null {
    const s = this.string(v, field);
    if (s === null) return null;
    const problem = nameProblem(s, rule);
    return problem === null ? s : this.fail('FERRY_MANIFEST_INVALID_NAME', field, `${q(s)} ${problem}`);
  }

  /** labels / annotations / selector maps: string keys and values, Kubernetes syntax for labels. */
  labels(v: unknown, field: string, what: 'labels' | 'annotations' | 'selector'): Labels | null {
    const o = this.optMap(v, field);
    if (o === null) return null;
    const code = what === 'selector' ? 'FERRY_MANIFEST_INVALID_SELECTOR' : 'FERRY_MANIFEST_INVALID_FIELD';
    const out = new Map<string, string>();
    let ok = true;
    for (const [key, value] of Object.entries(o)) {
      const at = `${field}[${JSON.stringify(key)}]`;
      const keyProblem = labelKeyProblem(key);
      const problem =
        typeof value !== 'string'
          ? `value must be a string (quote it), got ${q(value)}`
          : (keyProblem ?? (what === 'annotations' ? null : labelValueProblem(value)));
      if (problem !== null || typeof value !== 'string') {
        this.fail(code, at, problem ?? 'bad value');
        ok = false;
      } else {
        out.set(key, value);
      }
    }
    return ok ? out : null;
  }

  /** metav1.LabelSelector {matchLabels, matchExpressions}. */
  labelSelector(v: unknown, field: string): LabelSelector | null {
    const o = this.map(v, field);
    if (o === null) return null;
    this.onlyKeys(o, field, ['matchLabels', 'matchExpressions'], 'FERRY_MANIFEST_INVALID_SELECTOR');
    const matchLabels = this.labels(get(o, 'matchLabels'), `${field}.matchLabels`, 'selector');
    const items = this.list(get(o, 'matchExpressions'), `${field}.matchExpressions`);
    const matchExpressions: SelectorRequirement[] = [];
    let ok = matchLabels !== null && items !== null;
    (items ?? []).forEach((item, i) => {
      const r = this.#requirement(item, `${field}.matchExpressions[${i}]`);
      if (r === null) ok = false;
      else matchExpressions.push(r);
    });
    return ok && matchLabels !== null ? { matchLabels, matchExpressions } : null;
  }

  #requirement(v: unknown, field: string): SelectorRequirement | null {
    const code = 'FERRY_MANIFEST_INVALID_SELECTOR';
    const o = isObj(v) ? v : this.fail(code, field, `expected a map, got ${q(v)}`);
    if (o === null) return null;
    this.onlyKeys(o, field, ['key', 'operator', 'values'], code);
    const key = get(o, 'key');
    const operator = get(o, 'operator');
    const values = this.stringList(get(o, 'values'), `${field}.values`);
    if (typeof key !== 'string' || labelKeyProblem(key) !== null)
      return this.fail(code, `${field}.key`, `bad key ${q(key)}`);
    if (operator !== 'In' && operator !== 'NotIn' && operator !== 'Exists' && operator !== 'DoesNotExist') {
      return this.fail(code, `${field}.operator`, `must be In, NotIn, Exists or DoesNotExist, got ${q(operator)}`);
    }
    if (values === null) return null;
    const wantsValues = operator === 'In' || operator === 'NotIn';
    if (wantsValues !== values.length > 0) {
      const msg = wantsValues ? `${operator} needs at least one value` : `${operator} takes no values`;
      return this.fail(code, `${field}.values`, msg);
    }
    const bad = values.find((x) => labelValueProblem(x) !== null);
    if (bad !== undefined) return this.fail(code, `${field}.values`, `bad label value ${q(bad)}`);
    return { key, operator: operator satisfies SelectorOperator, values };
  }

  /** Rejects keys outside `allowed` (typos in policy fields must not silently widen a policy). */
  onlyKeys(
    o: Obj,
    field: string,
    allowed: readonly string[],
    code: DiagnosticCode = 'FERRY_MANIFEST_INVALID_FIELD',
  ): void {
    for (const key of Object.keys(o)) {
      if (!allowed.includes(key)) {
        this.fail(
          code,
          field === '' ? key : `${field}.${key}`,
          `unknown field (expected one of ${allowed.join(', ')})`,
        );
      }
    }
  }
}
