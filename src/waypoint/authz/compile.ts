// L7 AuthorizationPolicy (security.istio.io/v1) bound to a waypoint with `targetRefs` (docs/architecture.md "Policy and enrollment"): the
// spec as written → L7Policy, or the problems that keep it from applying. Istio string forms ("*", "x*",
// "*x", exact) and CIDRs reuse the ztunnel's pieces. Fields Ferry cannot evaluate (JWT: requestPrincipals,
// request.auth.*) make the policy invalid rather than silently weaker or stronger. Pure; never throws.
import type { ObjectInput } from '../../../gateway-api/types.ts';
import { stringMatch } from '../../mesh/authz/match.ts';
import { parseCidr } from '../../mesh/ip-addr.ts';
import type { Cidr, StringMatch } from '../../mesh/types.ts';

export type L7Action = 'ALLOW' | 'DENY';

export interface L7Target {
  readonly kind: 'Gateway' | 'Service';
  readonly name: string;
}

/** A field's accepted values and excluded values; an empty pair means "not constrained". */
export interface Constraint<T> {
  readonly values: readonly T[];
  readonly notValues: readonly T[];
}

export interface L7Source {
  readonly principals: Constraint<StringMatch>;
  readonly namespaces: Constraint<StringMatch>;
  /** `ns/name`; a bare name in the policy means the policy's namespace. */
  readonly serviceAccounts: Constraint<string>;
  readonly ipBlocks: Constraint<Cidr>;
  /**
   * The client's address as the waypoint sees it. No X-Forwarded-For hop is trusted (Istio's default of 0
   * trusted proxies), so this is the same address as `ipBlocks` matches.
   */
  readonly remoteIpBlocks: Constraint<Cidr>;
}

export interface L7Operation {
  readonly methods: Constraint<StringMatch>;
  readonly paths: Constraint<StringMatch>;
  /** Lower-cased. */
  readonly hosts: Constraint<StringMatch>;
  readonly ports: Constraint<number>;
}

export type L7ConditionKey =
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'source.ip' }
  | { readonly kind: 'source.namespace' }
  | { readonly kind: 'source.principal' }
  | { readonly kind: 'destination.port' };

export interface L7Condition {
  readonly key: L7ConditionKey;
  readonly values: readonly string[];
  readonly notValues: readonly string[];
}

/** from[] OR, to[] OR, when[] AND; the three AND. Empty lists do not constrain. */
export interface L7Rule {
  readonly from: readonly L7Source[];
  readonly to: readonly L7Operation[];
  readonly when: readonly L7Condition[];
}

export interface L7Policy {
  /** `ns/name`. */
  readonly key: string;
  readonly namespace: string;
  readonly action: L7Action;
  readonly targets: readonly L7Target[];
  readonly rules: readonly L7Rule[];
}

export interface L7PolicyProblem {
  readonly code: 'FERRY_L7_POLICY_INVALID' | 'FERRY_L7_POLICY_UNSUPPORTED';
  readonly field: string;
  readonly message: string;
}

type Obj = Readonly<Record<string, unknown>>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

class Problem extends Error {
  readonly code: L7PolicyProblem['code'];
  readonly field: string;
  constructor(code: L7PolicyProblem['code'], field: string, message: string) {
    super(message);
    this.code = code;
    this.field = field;
  }
}

export function compileL7Policy(input: ObjectInput): {
  readonly policy: L7Policy | null;
  readonly problems: readonly L7PolicyProblem[];
} {
  try {
    return { policy: compile(input), problems: [] };
  } catch (err) {
    if (err instanceof Problem)
      return { policy: null, problems: [{ code: err.code, field: err.field, message: err.message }] };
    throw err;
  }
}

function compile(input: ObjectInput): L7Policy {
  const spec = input.spec;
  if (!isObj(spec)) throw new Problem('FERRY_L7_POLICY_INVALID', 'spec', 'must be an object');
  const action = spec.action ?? 'ALLOW';
  if (action === 'CUSTOM' || action === 'AUDIT') {
    throw new Problem('FERRY_L7_POLICY_UNSUPPORTED', 'spec.action', `action ${action} is not supported`);
  }
  if (action !== 'ALLOW' && action !== 'DENY') {
    throw new Problem('FERRY_L7_POLICY_INVALID', 'spec.action', 'must be ALLOW or DENY');
  }
  const targets = readTargets(spec);
  const rulesRaw = spec.rules ?? [];
  if (!Array.isArray(rulesRaw) || rulesRaw.length > 512) {
    throw new Problem('FERRY_L7_POLICY_INVALID', 'spec.rules', 'must be a list');
  }
  const rules = rulesRaw.map((r: unknown, i: number) => readRule(r, `spec.rules[${i}]`, input.namespace));
  return { key: `${input.namespace}/${input.name}`, namespace: input.namespace, action, targets, rules };
}

function readTargets(spec: Obj): L7Target[] {
  const raw = spec.targetRefs ?? (spec.targetRef === undefined ? [] : [spec.targetRef]);
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new Problem('FERRY_L7_POLICY_INVALID', 'spec.targetRefs', 'a waypoint policy needs targetRefs');
  }
  return raw.map((t: unknown, i: number) => {
    const at = `spec.targetRefs[${i}]`;
    if (!isObj(t) || typeof t.name !== 'string' || t.name === '') {
      throw new Problem('FERRY_L7_POLICY_INVALID', `${at}.name`, 'must be a non-empty string');
    }
    if (t.kind === 'Gateway' && t.group === 'gateway.networking.k8s.io')
      return { kind: 'Gateway' as const, name: t.name };
    if (t.kind === 'Service' && (t.group === '' || t.group === undefined || t.group === 'core')) {
      return { kind: 'Service' as const, name: t.name };
    }
    throw new Problem(
      'FERRY_L7_POLICY_UNSUPPORTED',
      at,
      `target ${String(t.group)}/${String(t.kind)} is not supported (use a waypoint Gateway or a Service)`,
    );
  });
}

function strings(o: Obj, key: string, at: string): string[] {
  const v = o[key];
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
    throw new Problem('FERRY_L7_POLICY_INVALID', `${at}.${key}`, 'must be a list of strings');
  }
  return v as string[];
}

function pair<T>(o: Obj, key: string, at: string, conv: (s: string, field: string) => T): Constraint<T> {
  const notKey = `not${key[0]?.toUpperCase()}${key.slice(1)}`;
  return {
    values: strings(o, key, at).map((s) => conv(s, `${at}.${key}`)),
    notValues: strings(o, notKey, at).map((s) => conv(s, `${at}.${notKey}`)),
  };
}

const cidr = (s: string, field: string): Cidr => {
  const c = parseCidr(s.includes('/') ? s : s.includes(':') ? `${s}/128` : `${s}/32`);
  if (c === null) throw new Problem('FERRY_L7_POLICY_INVALID', field, `${JSON.stringify(s)} is not an IP or CIDR`);
  return c;
};

const port = (s: string, field: string): number => {
  const n = Number(s);
  if (!/^[0-9]{1,5}$/.test(s) || n < 1 || n > 65535) {
    throw new Problem('FERRY_L7_POLICY_INVALID', field, `${JSON.stringify(s)} is not a port`);
  }
  return n;
};

const principal = (s: string): StringMatch => stringMatch(s.startsWith('spiffe://') ? s.slice('spiffe://'.length) : s);

const SOURCE_FIELDS = new Set(
  ['principals', 'namespaces', 'serviceAccounts', 'ipBlocks', 'remoteIpBlocks'].flatMap((k) => [
    k,
    `not${k[0]?.toUpperCase()}${k.slice(1)}`,
  ]),
);
const OPERATION_FIELDS = new Set(
  ['methods', 'paths', 'hosts', 'ports'].flatMap((k) => [k, `not${k[0]?.toUpperCase()}${k.slice(1)}`]),
);

/** A field the evaluator would not look at must refuse the policy, never weaken or widen it silently. */
function refuseUnknown(o: Obj, known: ReadonlySet<string>, at: string): void {
  for (const k of Object.keys(o)) {
    if (!known.has(k)) throw new Problem('FERRY_L7_POLICY_INVALID', `${at}.${k}`, 'unknown field');
  }
}

/** `sa` (the policy's namespace) or `ns/sa`, as Istio's `serviceAccounts` accepts them. */
const serviceAccount =
  (policyNamespace: string) =>
  (s: string, field: string): string => {
    const parts = s.split('/');
    if (parts.length > 2 || parts.some((p) => !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(p))) {
      throw new Problem('FERRY_L7_POLICY_INVALID', field, `${JSON.stringify(s)} is not "name" or "namespace/name"`);
    }
    return parts.length === 2 ? s : `${policyNamespace}/${s}`;
  };

function readRule(raw: unknown, at: string, policyNamespace: string): L7Rule {
  if (!isObj(raw)) throw new Problem('FERRY_L7_POLICY_INVALID', at, 'must be an object');
  const list = (key: string): Obj[] => {
    const v = raw[key] ?? [];
    if (!Array.isArray(v)) throw new Problem('FERRY_L7_POLICY_INVALID', `${at}.${key}`, 'must be a list');
    return v as Obj[];
  };
  const from = list('from').map((f, i) => {
    const here = `${at}.from[${i}].source`;
    const s = isObj(f) ? f.source : undefined;
    if (!isObj(s)) throw new Problem('FERRY_L7_POLICY_INVALID', here, 'must be an object');
    for (const k of ['requestPrincipals', 'notRequestPrincipals']) {
      if (s[k] !== undefined)
        throw new Problem('FERRY_L7_POLICY_UNSUPPORTED', `${here}.${k}`, 'JWT request principals are not supported');
    }
    refuseUnknown(s, SOURCE_FIELDS, here);
    return {
      principals: pair(s, 'principals', here, principal),
      namespaces: pair(s, 'namespaces', here, stringMatch),
      serviceAccounts: pair(s, 'serviceAccounts', here, serviceAccount(policyNamespace)),
      ipBlocks: pair(s, 'ipBlocks', here, cidr),
      remoteIpBlocks: pair(s, 'remoteIpBlocks', here, cidr),
    };
  });
  const to = list('to').map((t, i) => {
    const here = `${at}.to[${i}].operation`;
    const o = isObj(t) ? t.operation : undefined;
    if (!isObj(o)) throw new Problem('FERRY_L7_POLICY_INVALID', here, 'must be an object');
    refuseUnknown(o, OPERATION_FIELDS, here);
    return {
      methods: pair(o, 'methods', here, stringMatch),
      paths: pair(o, 'paths', here, stringMatch),
      hosts: pair(o, 'hosts', here, (s) => stringMatch(s.toLowerCase())),
      ports: pair(o, 'ports', here, port),
    };
  });
  const when = list('when').map((w, i) => readCondition(w, `${at}.when[${i}]`));
  return { from, to, when };
}

const HEADER_KEY = /^request\.headers\[([^\]]+)\]$/;

function readCondition(w: unknown, at: string): L7Condition {
  if (!isObj(w) || typeof w.key !== 'string')
    throw new Problem('FERRY_L7_POLICY_INVALID', `${at}.key`, 'must be a string');
  const header = HEADER_KEY.exec(w.key);
  let key: L7ConditionKey;
  if (header !== null) key = { kind: 'header', name: (header[1] ?? '').toLowerCase() };
  else if (
    w.key === 'source.ip' ||
    w.key === 'source.namespace' ||
    w.key === 'source.principal' ||
    w.key === 'destination.port'
  ) {
    key = { kind: w.key };
  } else {
    throw new Problem(
      'FERRY_L7_POLICY_UNSUPPORTED',
      `${at}.key`,
      `condition key ${JSON.stringify(w.key)} is not supported`,
    );
  }
  const values = strings(w, 'values', at);
  const notValues = strings(w, 'notValues', at);
  if (values.length === 0 && notValues.length === 0) {
    throw new Problem('FERRY_L7_POLICY_INVALID', at, 'needs values or notValues');
  }
  return { key, values, notValues };
}
