// Static mesh config from a file in the shape of Istio ztunnel's LOCAL_XDS_PATH YAML (DESIGN.md §5.2,
// reference/ztunnel-anchor.md §5.6): `workloads`, `services`, `policies`, camelCase keys, unknown keys
// rejected. Converts the whole file into the domain MeshConfig or rejects it whole with every error found
// (file, path, value, reason, line/column): never half-accepted. Pure: the caller reads the file and logs.
import { LineCounter, type Node, parseDocument } from 'yaml';
import { parseSpiffeId, validateTrustDomain } from '../../identity/spiffe-id.ts';
import { EMPTY_MATCH } from '../authz/match.ts';
import {
  ConfigReader,
  type LocalConfigError,
  type LocalConfigErrorCode,
  MAX_LOCAL_CONFIG_BYTES,
} from './local-config-reader.ts';
import {
  readCidr,
  readGatewayAddress,
  readIp,
  readList,
  readName,
  readNamespace,
  readNetworkAddress,
  readPort,
  readPortMap,
  readStringMatch,
} from './local-config-values.ts';
import {
  type Authorization,
  type Clause,
  type Match,
  type MeshConfig,
  type PolicyAction,
  type PolicyScope,
  type PortMap,
  policyKey,
  type Rule,
  type Service,
  type ServiceAccountMatch,
  type ServiceKey,
  serviceKey,
  type TunnelProtocol,
  type Workload,
  type WorkloadStatus,
  type WorkloadType,
} from './types.ts';

export { LOCAL_CONFIG_ERROR_CODES, type LocalConfigError, type LocalConfigErrorCode } from './local-config-reader.ts';
export { serializeMeshConfig } from './local-config-serialize.ts';
/** The brief's name for a local-config error (not ztunnel/config.ts's ConfigError class). */
export type ConfigError = LocalConfigError;

export type LocalConfigResult = { ok: true; config: MeshConfig } | { ok: false; errors: LocalConfigError[] };

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
export const DEFAULT_SERVICE_ACCOUNT = 'default';
export const DEFAULT_CLUSTER_ID = 'Kubernetes';
/** Istio's canonical revision when a pod has no version label. */
export const DEFAULT_CANONICAL_REVISION = 'latest';
const MAX_CAPACITY = 0xffff_ffff; // proto uint32

const WORKLOAD_TYPES: readonly WorkloadType[] = ['deployment', 'cronjob', 'pod', 'job'];
const MATCH_KEYS = Object.keys(EMPTY_MATCH) as (keyof Match)[];

const WORKLOAD_KEYS = {
  required: ['uid', 'name', 'namespace'],
  optional: [
    'workloadIps',
    'protocol',
    'trustDomain',
    'serviceAccount',
    'node',
    'network',
    'waypoint',
    'authorizationPolicies',
    'status',
    'workloadName',
    'workloadType',
    'canonicalName',
    'canonicalRevision',
    'clusterId',
    'capacity',
    'services',
  ],
  ignored: ['locality'], // only feeds locality-aware load balancing, which Ferry does not do
  unsupported: ['hostname', 'networkGateway', 'nativeTunnel', 'networkMode', 'applicationTunnel'],
} as const;

const SERVICE_KEYS = {
  required: ['name', 'namespace', 'hostname'],
  optional: ['vips', 'ports', 'subjectAltNames', 'waypoint'],
  ignored: ['canonical', 'ipFamilies'], // hostname precedence and address families: no effect on Ferry
  unsupported: ['weightedWaypoints', 'loadBalancer', 'cidrVips', 'visibility', 'ingressUseWaypoint'],
} as const;

const POLICY_KEYS = { required: ['name', 'namespace', 'scope', 'action', 'rules'], optional: ['dryRun'] } as const;

/** Bookkeeping for cross-entry checks (uniqueness, references) with the first definition's path. */
class Seen {
  readonly #first = new Map<string, string>();
  claim(r: ConfigReader, key: string, path: string, node: Node | undefined, what: string): void {
    const first = this.#first.get(key);
    if (first === undefined) this.#first.set(key, path);
    else r.fail('FERRY_CONFIG_DUPLICATE', path, node, `${what} ${JSON.stringify(key)} is already defined at ${first}`);
  }
  has(key: string): boolean {
    return this.#first.has(key);
  }
}

interface Ctx {
  readonly r: ConfigReader;
  readonly uids: Seen;
  readonly addresses: Seen;
  readonly services: Seen;
  readonly vips: Seen;
  readonly policies: Seen;
  readonly policyRefs: { key: string; path: string; node: Node | undefined }[];
}

/** Parses and validates a whole config file; `sourceName` names the file in every error. */
export function parseLocalConfig(text: string, sourceName: string): LocalConfigResult {
  const error = (
    code: LocalConfigErrorCode,
    reason: string,
    line: number | null = null,
    column: number | null = null,
  ) => {
    const loc = line === null ? '' : `:${line}:${column}`;
    return {
      code,
      file: sourceName,
      path: '',
      value: null,
      reason,
      line,
      column,
      message: `${sourceName}${loc}: ${reason}`,
    };
  };
  if (typeof text !== 'string') return { ok: false, errors: [error('FERRY_CONFIG_WRONG_TYPE', 'config is not text')] };
  if (text.length > MAX_LOCAL_CONFIG_BYTES) {
    return { ok: false, errors: [error('FERRY_CONFIG_TOO_LARGE', `file larger than ${MAX_LOCAL_CONFIG_BYTES} bytes`)] };
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.slice(0, 20).map((e) => {
        const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
        // The yaml package catches its own stack overflow on absurd nesting and reports it as an error.
        const deep = e.message.includes('Maximum call stack size exceeded');
        const reason = deep ? 'YAML nested too deeply' : `YAML syntax error: ${e.message.split('\n')[0]}`;
        return error(deep ? 'FERRY_CONFIG_TOO_LARGE' : 'FERRY_CONFIG_YAML_SYNTAX', reason, pos.line, pos.col);
      }),
    };
  }
  const r = new ConfigReader(sourceName, doc, lines);
  const ctx: Ctx = {
    r,
    uids: new Seen(),
    addresses: new Seen(),
    services: new Seen(),
    vips: new Seen(),
    policies: new Seen(),
    policyRefs: [],
  };
  const root = r.resolve(doc.contents);
  const config = root === undefined ? { workloads: [], services: [], policies: [] } : readRoot(ctx, root);
  for (const ref of ctx.policyRefs) {
    if (!ctx.policies.has(ref.key)) {
      r.fail('FERRY_CONFIG_UNKNOWN_REFERENCE', ref.path, ref.node, `no policy ${JSON.stringify(ref.key)} in this file`);
    }
  }
  if (config === null || r.errors.length > 0) return { ok: false, errors: [...r.errors] };
  return { ok: true, config };
}

function readRoot(ctx: Ctx, root: Node): MeshConfig | null {
  const { r } = ctx;
  const f = r.fields(root, '', { optional: ['workloads', 'services', 'policies'] });
  if (f === null) return null;
  const workloads = readList(r, f.get('workloads'), 'workloads', (n, p) => readWorkload(ctx, n, p));
  const services = readList(r, f.get('services'), 'services', (n, p) => readService(ctx, n, p));
  const policies = readList(r, f.get('policies'), 'policies', (n, p) => readPolicy(ctx, n, p));
  if (workloads === null || services === null || policies === null) return null;
  return { workloads, services, policies };
}

/** Reads an optional field with `read`, or returns `fallback` when it is absent or null. */
function opt<T>(
  f: { get(k: string): Node | undefined; at(k: string): string },
  key: string,
  fallback: T,
  read: (n: Node, p: string) => T | null,
): T | null {
  const node = f.get(key);
  return node === undefined ? fallback : read(node, f.at(key));
}

function readWorkload(ctx: Ctx, node: Node | undefined, path: string): Workload | null {
  const { r } = ctx;
  const f = r.fields(node, path, WORKLOAD_KEYS);
  if (f === null) return null;
  const uid = r.string(f.get('uid'), f.at('uid'));
  if (uid !== null && uid === '')
    r.fail('FERRY_CONFIG_INVALID_VALUE', f.at('uid'), f.get('uid'), 'uid must not be empty');
  if (uid !== null && uid !== '') ctx.uids.claim(r, uid, f.at('uid'), f.get('uid'), 'workload uid');
  const name = readName(r, f.get('name'), f.at('name'));
  const namespace = readNamespace(r, f.get('namespace'), f.at('namespace'));
  const network = opt(f, 'network', '', (n, p) => r.string(n, p));
  const addresses = opt(f, 'workloadIps', [], (n, p) =>
    readList(r, n, p, (item, ip) => {
      const a = readIp(r, item, ip);
      // Within one network an address names one workload (Istio's `network/ip` alias key).
      if (a !== null && network !== null) ctx.addresses.claim(r, `${network}/${a}`, ip, item, 'workload address');
      return a;
    }),
  );
  const protocol = opt<TunnelProtocol>(f, 'protocol', 'TCP', (n, p) => r.oneOf(n, p, ['HBONE', 'TCP'] as const));
  const trustDomain = opt(f, 'trustDomain', DEFAULT_TRUST_DOMAIN, (n, p) => {
    const td = r.string(n, p);
    const problem = td === null ? null : validateTrustDomain(td);
    if (problem !== null) r.fail('FERRY_CONFIG_INVALID_VALUE', p, n, problem);
    return problem === null ? td : null;
  });
  const serviceAccount = opt(f, 'serviceAccount', DEFAULT_SERVICE_ACCOUNT, (n, p) => readName(r, n, p));
  if (trustDomain !== null && namespace !== null && serviceAccount !== null) {
    const id = parseSpiffeId(`spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`);
    if (!id.ok) r.fail('FERRY_CONFIG_INVALID_VALUE', f.at('serviceAccount'), f.get('serviceAccount'), id.error, f.node);
  }
  const workloadName = opt(f, 'workloadName', name, (n, p) => readName(r, n, p));
  const workloadType = opt<WorkloadType>(f, 'workloadType', 'deployment', (n, p) => {
    const s = r.string(n, p);
    const hit = WORKLOAD_TYPES.find((t) => t === s?.toLowerCase());
    if (s !== null && hit === undefined)
      r.fail('FERRY_CONFIG_INVALID_VALUE', p, n, `expected one of ${WORKLOAD_TYPES.join(', ')}`);
    return hit ?? null;
  });
  const policyRefs = opt(f, 'authorizationPolicies', [], (n, p) =>
    readList(r, n, p, (item, ip) => {
      const key = r.string(item, ip);
      const [ns, pname, ...rest] = key?.split('/') ?? [];
      if (key === null || ns === undefined || pname === undefined || rest.length > 0 || ns === '' || pname === '') {
        if (key !== null) r.fail('FERRY_CONFIG_INVALID_VALUE', ip, item, 'expected a policy key "namespace/name"');
        return null;
      }
      ctx.policyRefs.push({ key, path: ip, node: item });
      return key;
    }),
  );
  const services = opt(f, 'services', new Map<ServiceKey, PortMap>(), (n, p) => readWorkloadServices(ctx, n, p));
  const fields = {
    status: opt<WorkloadStatus>(f, 'status', 'Healthy', (n, p) => r.oneOf(n, p, ['Healthy', 'Unhealthy'] as const)),
    node: opt(f, 'node', '', (n, p) => r.string(n, p)),
    waypoint: opt(f, 'waypoint', null, (n, p) => readGatewayAddress(r, n, p)),
    canonicalName: opt(f, 'canonicalName', workloadName, (n, p) => readName(r, n, p)),
    canonicalRevision: opt(f, 'canonicalRevision', DEFAULT_CANONICAL_REVISION, (n, p) => readName(r, n, p)),
    clusterId: opt(f, 'clusterId', DEFAULT_CLUSTER_ID, (n, p) => readName(r, n, p)),
    capacity: opt(f, 'capacity', 1, (n, p) => r.integer(n, p, 1, MAX_CAPACITY)),
  };
  const { status, node: nodeName, waypoint, canonicalName, canonicalRevision, clusterId, capacity } = fields;
  if (
    uid === null ||
    name === null ||
    namespace === null ||
    network === null ||
    addresses === null ||
    protocol === null ||
    trustDomain === null ||
    serviceAccount === null ||
    workloadName === null ||
    workloadType === null ||
    policyRefs === null ||
    services === null ||
    status === null ||
    nodeName === null ||
    (waypoint === null && f.get('waypoint') !== undefined) ||
    canonicalName === null ||
    canonicalRevision === null ||
    clusterId === null ||
    capacity === null
  ) {
    return null;
  }
  return {
    uid,
    name,
    namespace,
    addresses,
    network,
    protocol,
    trustDomain,
    serviceAccount,
    node: nodeName,
    waypoint,
    workloadName,
    workloadType,
    canonicalName,
    canonicalRevision,
    clusterId,
    status,
    capacity,
    authorizationPolicies: policyRefs,
    services,
  };
}

function readServiceKey(ctx: Ctx, text: string, path: string, node: Node | undefined): ServiceKey | null {
  const slash = text.indexOf('/');
  const ns = text.slice(0, slash);
  const host = text.slice(slash + 1);
  if (slash < 0 || !/^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/.test(ns) || host === '' || /[\s/]/.test(host)) {
    ctx.r.fail('FERRY_CONFIG_INVALID_VALUE', path, node, 'expected a service key "namespace/hostname"');
    return null;
  }
  return serviceKey(ns, host);
}

function readWorkloadServices(ctx: Ctx, node: Node, path: string): Map<ServiceKey, PortMap> | null {
  const entries = ctx.r.entries(node, path);
  if (entries === null) return null;
  const out = new Map<ServiceKey, PortMap>();
  let ok = true;
  for (const e of entries) {
    const key = readServiceKey(ctx, e.key, e.path, e.keyNode);
    const ports = readPortMap(ctx.r, e.value, e.path);
    if (key === null || ports === null) ok = false;
    else out.set(key, ports);
  }
  return ok ? out : null;
}

function readService(ctx: Ctx, node: Node | undefined, path: string): Service | null {
  const { r } = ctx;
  const f = r.fields(node, path, SERVICE_KEYS);
  if (f === null) return null;
  const name = readName(r, f.get('name'), f.at('name'));
  const namespace = readNamespace(r, f.get('namespace'), f.at('namespace'));
  const hostname = readName(r, f.get('hostname'), f.at('hostname'));
  if (namespace !== null && hostname !== null) {
    ctx.services.claim(r, serviceKey(namespace, hostname), f.at('hostname'), f.get('hostname'), 'service');
  }
  const vips = opt(f, 'vips', [], (n, p) =>
    readList(r, n, p, (item, ip) => {
      const vip = readNetworkAddress(r, item, ip);
      if (vip !== null) ctx.vips.claim(r, `${vip.network}/${vip.address}`, ip, item, 'service VIP');
      return vip;
    }),
  );
  const portMap = opt(f, 'ports', new Map<number, number>(), (n, p) => readPortMap(r, n, p));
  const subjectAltNames = opt(f, 'subjectAltNames', [], (n, p) =>
    readList(r, n, p, (item, ip) => {
      const s = r.string(item, ip);
      const id = s === null ? null : parseSpiffeId(s);
      if (id !== null && !id.ok) r.fail('FERRY_CONFIG_INVALID_VALUE', ip, item, id.error);
      return id?.ok ? s : null;
    }),
  );
  const waypoint = opt(f, 'waypoint', null, (n, p) => readGatewayAddress(r, n, p));
  if (name === null || namespace === null || hostname === null || vips === null || portMap === null) return null;
  if (subjectAltNames === null || (waypoint === null && f.get('waypoint') !== undefined)) return null;
  const ports = [...portMap].map(([servicePort, targetPort]) => ({ servicePort, targetPort }));
  return { name, namespace, hostname, vips, ports, subjectAltNames, waypoint };
}

function readPolicy(ctx: Ctx, node: Node | undefined, path: string): Authorization | null {
  const { r } = ctx;
  const f = r.fields(node, path, POLICY_KEYS);
  if (f === null) return null;
  const name = readName(r, f.get('name'), f.at('name'));
  const namespace = readNamespace(r, f.get('namespace'), f.at('namespace'));
  if (name !== null && namespace !== null)
    ctx.policies.claim(r, policyKey(namespace, name), f.at('name'), f.get('name'), 'policy');
  const scope = r.oneOf<PolicyScope>(f.get('scope'), f.at('scope'), ['Global', 'Namespace', 'WorkloadSelector']);
  const action = r.oneOf<PolicyAction>(f.get('action'), f.at('action'), ['Allow', 'Deny']);
  const dryRun = opt(f, 'dryRun', false, (n, p) => r.boolean(n, p));
  const rules = readList<Rule>(r, f.get('rules'), f.at('rules'), (rule, rp) =>
    readList<Clause>(r, rule, rp, (clause, cp) => readList(r, clause, cp, (m, mp) => readMatch(ctx, m, mp))),
  );
  if (name === null || namespace === null || scope === null || action === null || dryRun === null || rules === null) {
    return null;
  }
  return { name, namespace, scope, action, dryRun, rules };
}

function readMatch(ctx: Ctx, node: Node | undefined, path: string): Match | null {
  const { r } = ctx;
  const f = r.fields(node, path, { optional: MATCH_KEYS });
  if (f === null) return null;
  const strings = (key: 'namespaces' | 'notNamespaces' | 'principals' | 'notPrincipals') => {
    const principal = key === 'principals' || key === 'notPrincipals';
    return opt(f, key, [], (n, p) => readList(r, n, p, (i, ip) => readStringMatch(r, i, ip, { principal })));
  };
  const cidrs = (key: 'sourceIps' | 'notSourceIps' | 'destinationIps' | 'notDestinationIps') =>
    opt(f, key, [], (n, p) => readList(r, n, p, (i, ip) => readCidr(r, i, ip)));
  const ports = (key: 'destinationPorts' | 'notDestinationPorts') =>
    opt(f, key, [], (n, p) => readList(r, n, p, (i, ip) => readPort(r, i, ip)));
  const accounts = (key: 'serviceAccounts' | 'notServiceAccounts') =>
    opt(f, key, [], (n, p) => readList(r, n, p, (i, ip) => readServiceAccountMatch(r, i, ip)));
  const m = {
    namespaces: strings('namespaces'),
    notNamespaces: strings('notNamespaces'),
    serviceAccounts: accounts('serviceAccounts'),
    notServiceAccounts: accounts('notServiceAccounts'),
    principals: strings('principals'),
    notPrincipals: strings('notPrincipals'),
    sourceIps: cidrs('sourceIps'),
    notSourceIps: cidrs('notSourceIps'),
    destinationIps: cidrs('destinationIps'),
    notDestinationIps: cidrs('notDestinationIps'),
    destinationPorts: ports('destinationPorts'),
    notDestinationPorts: ports('notDestinationPorts'),
  };
  for (const key of MATCH_KEYS) if (m[key] === null) return null;
  return m as Match;
}

function readServiceAccountMatch(r: ConfigReader, node: Node | undefined, path: string): ServiceAccountMatch | null {
  const f = r.fields(node, path, { required: ['namespace', 'serviceAccount'] });
  if (f === null) return null;
  const namespace = readNamespace(r, f.get('namespace'), f.at('namespace'));
  const serviceAccount = readName(r, f.get('serviceAccount'), f.at('serviceAccount'));
  return namespace === null || serviceAccount === null ? null : { namespace, serviceAccount };
}
