// Structural validation of Istio security kinds (AuthorizationPolicy, PeerAuthentication; security.istio.io
// v1/v1beta1) and the Gateway API Gateway. Unknown fields in the Istio specs are errors, as in Istio's CRD
// schema: a misspelt `principal:` must not silently turn a rule into match-everything. Value semantics
// (string forms, CIDRs, ports) belong to translation. Pure.
import { get, type Obj, type ObjectReader, q } from './k8s-reader.ts';
import type {
  AuthorizationPolicyObject,
  AuthzConditionSpec,
  AuthzOperationSpec,
  AuthzRuleSpec,
  AuthzSourceSpec,
  GatewayListener,
  GatewayObject,
  Labels,
  MtlsModeSpec,
  PeerAuthenticationObject,
  ReferenceGrantObject,
} from './types.ts';

const SOURCE_KEYS = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
] as const satisfies readonly (keyof AuthzSourceSpec)[];
const OPERATION_KEYS = [
  'hosts',
  'notHosts',
  'ports',
  'notPorts',
  'methods',
  'notMethods',
  'paths',
  'notPaths',
] as const satisfies readonly (keyof AuthzOperationSpec)[];
const ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'];
const MTLS_MODES: readonly MtlsModeSpec[] = ['UNSET', 'STRICT', 'PERMISSIVE', 'DISABLE'];

/** Istio WorkloadSelector: matchLabels only; an empty one selects like no selector. */
function workloadSelector(r: ObjectReader, v: unknown): Labels | null | undefined {
  if (v === undefined || v === null) return null;
  const o = r.map(v, 'spec.selector');
  if (o === null) return undefined;
  r.onlyKeys(o, 'spec.selector', ['matchLabels'], 'FERRY_MANIFEST_INVALID_SELECTOR');
  const labels = r.labels(get(o, 'matchLabels'), 'spec.selector.matchLabels', 'selector');
  if (labels === null) return undefined;
  return labels.size === 0 ? null : labels;
}

/** Reads the listed string-list fields of a map into a record of arrays ([] when absent). */
function stringFields<K extends string>(
  r: ObjectReader,
  o: Obj,
  field: string,
  keys: readonly K[],
): Record<K, readonly string[]> {
  r.onlyKeys(o, field, keys);
  const out = {} as Record<K, readonly string[]>;
  for (const key of keys) out[key] = r.stringList(get(o, key), `${field}.${key}`) ?? [];
  return out;
}

/** `from: [{source: …}]` / `to: [{operation: …}]`: each entry must have a non-empty body (Istio validation). */
function entries<K extends string>(
  r: ObjectReader,
  v: unknown,
  field: string,
  body: 'source' | 'operation',
  keys: readonly K[],
): Record<K, readonly string[]>[] {
  const out: Record<K, readonly string[]>[] = [];
  (r.list(v, field) ?? []).forEach((item, i) => {
    const at = `${field}[${i}]`;
    const entry = r.map(item, at);
    if (entry === null) return;
    r.onlyKeys(entry, at, [body]);
    const o = r.map(get(entry, body), `${at}.${body}`);
    if (o === null) return;
    const fields = stringFields(r, o, `${at}.${body}`, keys);
    const unknownKeys = Object.keys(o).some((k) => !(keys as readonly string[]).includes(k)); // already reported
    if (!unknownKeys && Object.values<readonly string[]>(fields).every((list) => list.length === 0)) {
      r.fail('FERRY_MANIFEST_INVALID_FIELD', `${at}.${body}`, `${body} must not be empty`);
      return;
    }
    out.push(fields);
  });
  return out;
}

function parseRule(r: ObjectReader, v: unknown, field: string): AuthzRuleSpec | null {
  const o = r.map(v, field);
  if (o === null) return null;
  r.onlyKeys(o, field, ['from', 'to', 'when']);
  const from = entries(r, get(o, 'from'), `${field}.from`, 'source', SOURCE_KEYS);
  const to = entries(r, get(o, 'to'), `${field}.to`, 'operation', OPERATION_KEYS);
  const when: AuthzConditionSpec[] = [];
  (r.list(get(o, 'when'), `${field}.when`) ?? []).forEach((item, i) => {
    const at = `${field}.when[${i}]`;
    const c = r.map(item, at);
    if (c === null) return;
    r.onlyKeys(c, at, ['key', 'values', 'notValues']);
    const key = r.string(get(c, 'key'), `${at}.key`);
    const values = r.stringList(get(c, 'values'), `${at}.values`);
    const notValues = r.stringList(get(c, 'notValues'), `${at}.notValues`);
    if (key !== null && values !== null && notValues !== null) when.push({ key, values, notValues });
  });
  return { from, to, when };
}

export function parseAuthorizationPolicy(
  r: ObjectReader,
  base: Omit<AuthorizationPolicyObject, 'spec'>,
  v: unknown,
): AuthorizationPolicyObject | null {
  const s = r.optMap(v, 'spec');
  if (s === null) return null;
  r.onlyKeys(s, 'spec', ['selector', 'targetRef', 'targetRefs', 'action', 'provider', 'rules']);
  const selector = workloadSelector(r, get(s, 'selector'));
  const hasTargetRefs =
    get(s, 'targetRef') != null || (r.list(get(s, 'targetRefs'), 'spec.targetRefs') ?? []).length > 0;
  const rawAction = get(s, 'action') ?? 'ALLOW';
  const action = typeof rawAction === 'string' && ACTIONS.includes(rawAction) ? rawAction : null;
  if (action === null)
    r.fail('FERRY_MANIFEST_INVALID_FIELD', 'spec.action', `must be one of ${ACTIONS.join(', ')}, got ${q(rawAction)}`);
  const rules: AuthzRuleSpec[] = [];
  (r.list(get(s, 'rules'), 'spec.rules') ?? []).forEach((item, i) => {
    const rule = parseRule(r, item, `spec.rules[${i}]`);
    if (rule !== null) rules.push(rule);
  });
  if (selector === undefined || action === null) return null;
  return { ...base, spec: { selector, hasTargetRefs, action, rules, raw: s } };
}

function mtlsMode(r: ObjectReader, v: unknown, field: string): MtlsModeSpec | null {
  const o = r.optMap(v, field);
  if (o === null) return null;
  r.onlyKeys(o, field, ['mode']);
  const raw = get(o, 'mode') ?? 'UNSET';
  return (
    MTLS_MODES.find((m) => m === raw) ??
    r.fail('FERRY_MANIFEST_INVALID_FIELD', `${field}.mode`, `must be one of ${MTLS_MODES.join(', ')}, got ${q(raw)}`)
  );
}

export function parsePeerAuthentication(
  r: ObjectReader,
  base: Omit<PeerAuthenticationObject, 'spec'>,
  v: unknown,
): PeerAuthenticationObject | null {
  const s = r.optMap(v, 'spec');
  if (s === null) return null;
  r.onlyKeys(s, 'spec', ['selector', 'mtls', 'portLevelMtls']);
  const selector = workloadSelector(r, get(s, 'selector'));
  const mode = mtlsMode(r, get(s, 'mtls'), 'spec.mtls');
  const ports = r.optMap(get(s, 'portLevelMtls'), 'spec.portLevelMtls') ?? {};
  const portLevelMtls = new Map<number, MtlsModeSpec>();
  for (const [key, value] of Object.entries(ports)) {
    const at = `spec.portLevelMtls[${JSON.stringify(key)}]`;
    const port = /^[0-9]{1,5}$/.test(key)
      ? r.port(Number(key), at)
      : r.fail('FERRY_MANIFEST_INVALID_PORT', at, `not a port number: ${q(key)}`);
    const portMode = mtlsMode(r, value, at);
    if (port !== null && portMode !== null) portLevelMtls.set(port, portMode);
  }
  if (portLevelMtls.size > 0 && selector === null) {
    r.fail('FERRY_MANIFEST_INVALID_FIELD', 'spec.portLevelMtls', 'portLevelMtls needs a workload selector');
  }
  if (selector === undefined || mode === null) return null;
  return { ...base, spec: { selector, mode, portLevelMtls } };
}

export function parseGateway(r: ObjectReader, base: Omit<GatewayObject, 'spec'>, v: unknown): GatewayObject | null {
  const s = r.map(v, 'spec');
  if (s === null) return null;
  const gatewayClassName = r.string(get(s, 'gatewayClassName'), 'spec.gatewayClassName');
  const listeners: GatewayListener[] = [];
  (r.list(get(s, 'listeners'), 'spec.listeners') ?? []).forEach((item, i) => {
    const at = `spec.listeners[${i}]`;
    const l = r.map(item, at);
    if (l === null) return;
    const name = r.string(get(l, 'name'), `${at}.name`);
    const port = r.port(get(l, 'port'), `${at}.port`);
    const protocol = r.string(get(l, 'protocol'), `${at}.protocol`);
    if (name !== null && port !== null && protocol !== null) listeners.push({ name, port, protocol });
  });
  if (gatewayClassName === null) return null;
  return { ...base, spec: { gatewayClassName, listeners } };
}

/** ReferenceGrant: spec.from[] {group, kind, namespace} and spec.to[] {group, kind, name?}, each 1..16. */
export function parseReferenceGrant(
  r: ObjectReader,
  base: Omit<ReferenceGrantObject, 'spec'>,
  v: unknown,
): ReferenceGrantObject | null {
  const s = r.map(v, 'spec');
  if (s === null) return null;
  const from: ReferenceGrantObject['spec']['from'][number][] = [];
  const to: ReferenceGrantObject['spec']['to'][number][] = [];
  let ok = true;
  (r.list(get(s, 'from'), 'spec.from') ?? []).forEach((item, i) => {
    const at = `spec.from[${i}]`;
    const f = r.map(item, at);
    const group = f === null ? null : r.string(get(f, 'group') ?? '', `${at}.group`);
    const kind = f === null ? null : r.string(get(f, 'kind'), `${at}.kind`);
    const namespace = f === null ? null : r.string(get(f, 'namespace'), `${at}.namespace`);
    if (group === null || kind === null || namespace === null) ok = false;
    else from.push({ group, kind, namespace });
  });
  (r.list(get(s, 'to'), 'spec.to') ?? []).forEach((item, i) => {
    const at = `spec.to[${i}]`;
    const t = r.map(item, at);
    const group = t === null ? null : r.string(get(t, 'group') ?? '', `${at}.group`);
    const kind = t === null ? null : r.string(get(t, 'kind'), `${at}.kind`);
    const name = t === null ? undefined : r.optString(get(t, 'name'), `${at}.name`);
    if (group === null || kind === null || name === null) ok = false;
    else to.push({ group, kind, name: name ?? null });
  });
  if (from.length === 0 || to.length === 0) {
    r.fail('FERRY_MANIFEST_INVALID_FIELD', 'spec', 'a ReferenceGrant needs at least one from and one to entry');
    return null;
  }
  return ok ? { ...base, spec: { from, to } } : null;
}
