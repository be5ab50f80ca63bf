// Static mesh config from a file in the shape of Istio ztunnel's LOCAL_XDS_PATH YAML (docs/architecture.md "Configuration distribution (delta xDS)",
// docs/architecture.md "Configuration distribution (delta xDS)"): `workloads`, `services`, `policies`, camelCase keys, unknown keys
// rejected. Converts the whole file into the domain MeshConfig or rejects it whole with every error found
// (file, path, value, reason, line/column): never half-accepted. Pure: the caller reads the file and logs.
import { LineCounter, type Node, parseDocument } from 'yaml';
import { parseSpiffeId, validateTrustDomain } from '../../identity/spiffe-id.ts';
import {
  DEFAULT_CANONICAL_REVISION,
  DEFAULT_CLUSTER_ID,
  DEFAULT_SERVICE_ACCOUNT,
  DEFAULT_TRUST_DOMAIN,
} from '../names.ts';
import {
  type MeshConfig,
  type PortMap,
  type Service,
  type ServiceKey,
  serviceKey,
  type TunnelProtocol,
  type Workload,
  type WorkloadStatus,
  type WorkloadType,
} from '../types.ts';
import { readPolicy } from './policy.ts';
import {
  ConfigReader,
  type LocalConfigError,
  type LocalConfigErrorCode,
  MAX_LOCAL_CONFIG_BYTES,
  opt,
  Seen,
} from './reader.ts';
import {
  readGatewayAddress,
  readIp,
  readList,
  readName,
  readNamespace,
  readNetwork,
  readNetworkAddress,
  readPortMap,
  readServiceKey,
} from './values.ts';

export { LOCAL_CONFIG_ERROR_CODES, type LocalConfigError, type LocalConfigErrorCode } from './reader.ts';
export { serializeMeshConfig } from './serialize.ts';
/** The brief's name for a local-config error (not ztunnel/config.ts's ConfigError class). */
export type ConfigError = LocalConfigError;

export type LocalConfigResult = { ok: true; config: MeshConfig } | { ok: false; errors: LocalConfigError[] };

export { DEFAULT_CANONICAL_REVISION, DEFAULT_CLUSTER_ID, DEFAULT_SERVICE_ACCOUNT, DEFAULT_TRUST_DOMAIN };

const MAX_CAPACITY = 0xffff_ffff; // proto uint32

const WORKLOAD_TYPES: readonly WorkloadType[] = ['deployment', 'cronjob', 'pod', 'job'];

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
  const policies = readList(r, f.get('policies'), 'policies', (n, p) => readPolicy(r, ctx.policies, n, p));
  if (workloads === null || services === null || policies === null) return null;
  return { workloads, services, policies };
}

function readWorkload(ctx: Ctx, node: Node | undefined, path: string): Workload | null {
  const { r } = ctx;
  const f = r.fields(node, path, WORKLOAD_KEYS);
  if (f === null) return null;
  const uid = r.string(f.get('uid'), f.at('uid'));
  if (uid === '') r.fail('FERRY_CONFIG_INVALID_VALUE', f.at('uid'), f.get('uid'), 'uid must not be empty');
  else if (uid !== null) ctx.uids.claim(r, uid, f.at('uid'), f.get('uid'), 'workload uid');
  const name = readName(r, f.get('name'), f.at('name'));
  const namespace = readNamespace(r, f.get('namespace'), f.at('namespace'));
  const network = opt(f, 'network', '', (n, p) => readNetwork(r, n, p));
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
  const status = opt<WorkloadStatus>(f, 'status', 'Healthy', (n, p) =>
    r.oneOf(n, p, ['Healthy', 'Unhealthy'] as const),
  );
  const nodeName = opt(f, 'node', '', (n, p) => r.string(n, p));
  const waypoint = opt(f, 'waypoint', null, (n, p) => readGatewayAddress(r, n, p));
  const canonicalName = opt(f, 'canonicalName', workloadName, (n, p) => readName(r, n, p));
  const canonicalRevision = opt(f, 'canonicalRevision', DEFAULT_CANONICAL_REVISION, (n, p) => readName(r, n, p));
  const clusterId = opt(f, 'clusterId', DEFAULT_CLUSTER_ID, (n, p) => readName(r, n, p));
  const capacity = opt(f, 'capacity', 1, (n, p) => r.integer(n, p, 1, MAX_CAPACITY));
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

function readWorkloadServices(ctx: Ctx, node: Node, path: string): Map<ServiceKey, PortMap> | null {
  const entries = ctx.r.entries(node, path);
  if (entries === null) return null;
  const out = new Map<ServiceKey, PortMap>();
  let ok = true;
  for (const e of entries) {
    const key = readServiceKey(ctx.r, e.key, e.path, e.keyNode);
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
