// xDS resource → domain conversion on the ztunnel side (docs/architecture.md "Policy and enrollment", "Configuration distribution (delta xDS)"):
// decodes one istio.workload.Address or istio.security.Authorization body and validates it into the
// domain types of store/types.ts, with the same rules and defaults as the static file (store/local-config*.ts)
// so one mesh reads the same from either source. Pure: never throws; a bad resource yields an error naming
// the resource and the field path, which the client turns into a NACK.

import type { ObjectInput } from '../../gateway-api/types.ts';
import { parseSpiffeId, validateTrustDomain } from '../identity/spiffe-id.ts';
import { formatIp } from '../mesh/ip-addr.ts';
import {
  DEFAULT_CANONICAL_REVISION,
  DEFAULT_CLUSTER_ID,
  DEFAULT_SERVICE_ACCOUNT,
  DEFAULT_TRUST_DOMAIN,
  HBONE_PORT,
  isName,
  isNamespace,
  MAX_PORT,
} from '../mesh/names.ts';
import type {
  AppProtocol,
  Authorization,
  Cidr,
  GatewayAddress,
  IpAddr,
  Match,
  NetworkAddress,
  PortMap,
  Service,
  ServiceAccountMatch,
  ServiceKey,
  StringMatch,
  Workload,
  WorkloadType,
} from '../mesh/types.ts';
import type { XdsErrorCode } from './errors.ts';
import { decodeMessage, isRecord, type XdsProtos } from './proto.ts';

/** Why one resource was refused: `field` is a path inside the message, e.g. `workload.addresses[1]`. */
export interface XdsResourceError {
  readonly code: Extract<XdsErrorCode, 'FERRY_XDS_RESOURCE_REJECTED'>;
  readonly resource: string;
  readonly field: string;
  readonly reason: string;
  /** `<resource>: <field>: <reason>`, as sent in the NACK's error_detail. */
  readonly message: string;
}

export type AddressValue =
  | { readonly kind: 'workload'; readonly workload: Workload }
  | { readonly kind: 'service'; readonly service: Service };

export type ConvertResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: XdsResourceError };

const MAX_CAPACITY = 0xffff_ffff;
const WORKLOAD_TYPES: Readonly<Record<string, WorkloadType>> = {
  DEPLOYMENT: 'deployment',
  CRONJOB: 'cronjob',
  POD: 'pod',
  JOB: 'job',
};

/** Thrown inside this module only, caught by the parse* entry points. */
class FieldError {
  readonly field: string;
  readonly reason: string;
  constructor(field: string, reason: string) {
    this.field = field;
    this.reason = reason;
  }
}

function fail(field: string, reason: string): never {
  throw new FieldError(field, reason);
}

function convert<T>(
  resource: string,
  bytes: Uint8Array,
  decode: (b: Uint8Array) => Record<string, unknown>,
  read: (o: Record<string, unknown>) => T,
): ConvertResult<T> {
  try {
    let obj: Record<string, unknown>;
    try {
      obj = decode(bytes);
    } catch (err) {
      fail('', `not a valid protobuf message: ${(err as Error).message}`);
    }
    return { ok: true, value: read(obj) };
  } catch (err) {
    if (!(err instanceof FieldError)) throw err; // our own bug: let it surface
    const where = err.field === '' ? '' : `${err.field}: `;
    return {
      ok: false,
      error: {
        code: 'FERRY_XDS_RESOURCE_REJECTED',
        resource,
        field: err.field,
        reason: err.reason,
        message: `${resource}: ${where}${err.reason}`,
      },
    };
  }
}

/** Decodes and validates an istio.workload.Address body named `resource`. */
export function parseAddressResource(
  protos: XdsProtos,
  resource: string,
  bytes: Uint8Array,
): ConvertResult<AddressValue> {
  return convert(
    resource,
    bytes,
    (b) => decodeMessage(protos.address, b),
    (obj) => {
      if (obj.type === 'workload')
        return { kind: 'workload', workload: readWorkload(rec(obj.workload, 'workload'), 'workload') };
      if (obj.type === 'service')
        return { kind: 'service', service: readService(rec(obj.service, 'service'), 'service') };
      return fail('type', 'Address carries neither a workload nor a service');
    },
  );
}

/** Decodes and validates an istio.security.Authorization body named `resource`. */
export function parseAuthorizationResource(
  protos: XdsProtos,
  resource: string,
  bytes: Uint8Array,
): ConvertResult<Authorization> {
  return convert(
    resource,
    bytes,
    (b) => decodeMessage(protos.authorization, b),
    (obj) => readAuthorization(obj),
  );
}

// ---- field readers: each takes the path of the value it reads ----

function rec(v: unknown, path: string): Record<string, unknown> {
  return isRecord(v) ? v : fail(path, 'expected a message');
}

function list(v: unknown, path: string): unknown[] {
  return Array.isArray(v) ? v : fail(path, 'expected a list');
}

/** `path.key`, or just `key` at the top of a message. */
function at(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function str(o: Record<string, unknown>, key: string, path: string): string {
  const v = o[key];
  return typeof v === 'string' ? v : fail(at(path, key), 'expected a string');
}

function uint(v: unknown, path: string, min: number, max: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    fail(path, `expected ${what} in ${min}..${max}, got ${String(v)}`);
  return v;
}

function enumName(o: Record<string, unknown>, key: string, path: string, allowed: readonly string[]): string {
  const v = o[key];
  if (typeof v !== 'string' || !allowed.includes(v))
    fail(at(path, key), `unsupported value ${String(v)} (supported: ${allowed.join(', ')})`);
  return v;
}

function name(o: Record<string, unknown>, key: string, path: string, fallback?: string): string {
  const v = str(o, key, path);
  if (v === '' && fallback !== undefined) return fallback;
  if (!isName(v)) fail(at(path, key), `expected a non-empty name without whitespace or '/', got ${JSON.stringify(v)}`);
  return v;
}

function namespace(o: Record<string, unknown>, key: string, path: string): string {
  const v = str(o, key, path);
  if (!isNamespace(v)) fail(at(path, key), `expected a namespace (lowercase RFC 1123 label), got ${JSON.stringify(v)}`);
  return v;
}

function network(o: Record<string, unknown>, key: string, path: string): string {
  const v = str(o, key, path);
  if (v !== '' && !isName(v))
    fail(at(path, key), `expected a network name without whitespace or '/', got ${JSON.stringify(v)}`);
  return v;
}

/** 4 bytes → IPv4, 16 bytes → IPv6, in the store's canonical text form. */
function ipBytes(v: unknown, path: string): IpAddr {
  if (!(v instanceof Uint8Array) || (v.length !== 4 && v.length !== 16)) {
    fail(path, `expected a 4- or 16-byte IP address, got ${v instanceof Uint8Array ? `${v.length} bytes` : typeof v}`);
  }
  let value = 0n;
  for (const byte of v) value = (value << 8n) | BigInt(byte);
  return formatIp({ family: v.length === 4 ? 4 : 6, value });
}

function unsupportedIf(cond: boolean, path: string, what: string): void {
  if (cond) fail(path, `${what} is not supported by Ferry`);
}

function readWorkload(o: Record<string, unknown>, path: string): Workload {
  const uid = str(o, 'uid', path);
  if (uid === '') fail(`${path}.uid`, 'uid must not be empty');
  const wname = name(o, 'name', path);
  const ns = namespace(o, 'namespace', path);
  const addresses = list(o.addresses, `${path}.addresses`).map((a, i) => ipBytes(a, `${path}.addresses[${i}]`));
  unsupportedIf(str(o, 'hostname', path) !== '', `${path}.hostname`, 'a workload reached by hostname');
  unsupportedIf(
    o.network_gateway !== null && o.network_gateway !== undefined,
    `${path}.network_gateway`,
    'a network gateway',
  );
  unsupportedIf(o.native_tunnel === true, `${path}.native_tunnel`, 'native_tunnel');
  unsupportedIf(o.network_mode !== 'STANDARD', `${path}.network_mode`, `network_mode ${String(o.network_mode)}`);
  const tunnel = isRecord(o.application_tunnel) ? o.application_tunnel : null;
  unsupportedIf(tunnel !== null && tunnel.protocol !== 'NONE', `${path}.application_tunnel`, 'an application tunnel');
  const protocol = enumName(o, 'tunnel_protocol', path, ['NONE', 'HBONE']) === 'HBONE' ? 'HBONE' : 'TCP';
  const trustDomain = str(o, 'trust_domain', path) || DEFAULT_TRUST_DOMAIN;
  const tdProblem = validateTrustDomain(trustDomain);
  if (tdProblem !== null) fail(`${path}.trust_domain`, tdProblem);
  const serviceAccount = name(o, 'service_account', path, DEFAULT_SERVICE_ACCOUNT);
  const id = parseSpiffeId(`spiffe://${trustDomain}/ns/${ns}/sa/${serviceAccount}`);
  if (!id.ok) fail(`${path}.service_account`, id.error);
  const workloadName = name(o, 'workload_name', path, wname);
  const workloadType = WORKLOAD_TYPES[enumName(o, 'workload_type', path, Object.keys(WORKLOAD_TYPES))] ?? 'deployment';
  const capacityMsg = o.capacity;
  const capacity = isRecord(capacityMsg)
    ? uint(capacityMsg.value, `${path}.capacity`, 1, MAX_CAPACITY, 'a capacity')
    : 1;
  const waypoint =
    o.waypoint === null || o.waypoint === undefined
      ? null
      : readGateway(rec(o.waypoint, `${path}.waypoint`), `${path}.waypoint`);
  return {
    uid,
    name: wname,
    namespace: ns,
    addresses,
    network: network(o, 'network', path),
    protocol,
    trustDomain,
    serviceAccount,
    node: str(o, 'node', path),
    waypoint,
    workloadName,
    workloadType,
    canonicalName: name(o, 'canonical_name', path, workloadName),
    canonicalRevision: name(o, 'canonical_revision', path, DEFAULT_CANONICAL_REVISION),
    clusterId: name(o, 'cluster_id', path, DEFAULT_CLUSTER_ID),
    status: enumName(o, 'status', path, ['HEALTHY', 'UNHEALTHY']) === 'HEALTHY' ? 'Healthy' : 'Unhealthy',
    capacity,
    authorizationPolicies: list(o.authorization_policies, `${path}.authorization_policies`).map((k, i) =>
      policyRef(k, `${path}.authorization_policies[${i}]`),
    ),
    services: readWorkloadServices(rec(o.services, `${path}.services`), `${path}.services`),
  };
}

function policyRef(v: unknown, path: string): string {
  if (typeof v !== 'string') return fail(path, 'expected a string');
  const parts = v.split('/');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') fail(path, 'expected a policy key "namespace/name"');
  return v;
}

function serviceKeyOf(text: string, path: string): ServiceKey {
  const slash = text.indexOf('/');
  if (slash < 0 || !isNamespace(text.slice(0, slash)) || !isName(text.slice(slash + 1))) {
    fail(path, `expected a service key "namespace/hostname", got ${JSON.stringify(text)}`);
  }
  return text;
}

function readWorkloadServices(o: Record<string, unknown>, path: string): Map<ServiceKey, PortMap> {
  const out = new Map<ServiceKey, PortMap>();
  for (const [key, portList] of Object.entries(o)) {
    const at = `${path}[${JSON.stringify(key)}]`;
    out.set(serviceKeyOf(key, at), readPorts(rec(portList, at).ports, `${at}.ports`));
  }
  return out;
}

function readPorts(v: unknown, path: string): Map<number, number> {
  const out = new Map<number, number>();
  list(v, path).forEach((p, i) => {
    const at = `${path}[${i}]`;
    const port = rec(p, at);
    const servicePort = uint(port.service_port, `${at}.service_port`, 1, MAX_PORT, 'a service port');
    if (out.has(servicePort)) fail(`${at}.service_port`, `service port ${servicePort} is listed twice`);
    out.set(servicePort, uint(port.target_port, `${at}.target_port`, 0, MAX_PORT, 'a target port (0 = named)'));
  });
  return out;
}

function readNetworkAddress(o: Record<string, unknown>, path: string): NetworkAddress {
  unsupportedIf(o.length !== undefined && o.length !== null, `${path}.length`, 'a CIDR VIP');
  return { network: network(o, 'network', path), address: ipBytes(o.address, `${path}.address`) };
}

function readGateway(o: Record<string, unknown>, path: string): GatewayAddress {
  const port =
    o.hbone_mtls_port === 0 ? HBONE_PORT : uint(o.hbone_mtls_port, `${path}.hbone_mtls_port`, 1, MAX_PORT, 'a port');
  if (o.destination === 'address') {
    return {
      destination: {
        kind: 'address',
        address: readNetworkAddress(rec(o.address, `${path}.address`), `${path}.address`),
      },
      hboneMtlsPort: port,
    };
  }
  if (o.destination === 'hostname') {
    const h = rec(o.hostname, `${path}.hostname`);
    const at = `${path}.hostname`;
    return {
      destination: { kind: 'hostname', namespace: namespace(h, 'namespace', at), hostname: name(h, 'hostname', at) },
      hboneMtlsPort: port,
    };
  }
  return fail(`${path}.destination`, 'expected an address or a hostname');
}

function readService(o: Record<string, unknown>, path: string): Service {
  unsupportedIf(
    o.load_balancing !== null && o.load_balancing !== undefined,
    `${path}.load_balancing`,
    'load_balancing',
  );
  unsupportedIf(
    list(o.weighted_waypoints, `${path}.weighted_waypoints`).length > 0,
    `${path}.weighted_waypoints`,
    'weighted waypoints',
  );
  unsupportedIf(o.visibility !== 'PUBLIC', `${path}.visibility`, `visibility ${String(o.visibility)}`);
  unsupportedIf(o.ingress_use_waypoint === true, `${path}.ingress_use_waypoint`, 'ingress_use_waypoint');
  const ports = readPorts(o.ports, `${path}.ports`);
  const sans = list(o.subject_alt_names, `${path}.subject_alt_names`).map((s, i) => {
    if (typeof s !== 'string') return fail(`${path}.subject_alt_names[${i}]`, 'expected a string');
    const id = parseSpiffeId(s);
    if (!id.ok) fail(`${path}.subject_alt_names[${i}]`, id.error);
    return s;
  });
  return {
    name: name(o, 'name', path),
    namespace: namespace(o, 'namespace', path),
    hostname: name(o, 'hostname', path),
    vips: list(o.addresses, `${path}.addresses`).map((a, i) =>
      readNetworkAddress(rec(a, `${path}.addresses[${i}]`), `${path}.addresses[${i}]`),
    ),
    ports: [...ports].map(([servicePort, targetPort], i) => ({
      servicePort,
      targetPort,
      ...portExtras(list(o.ports, `${path}.ports`)[i]),
    })),
    subjectAltNames: sans,
    waypoint:
      o.waypoint === null || o.waypoint === undefined
        ? null
        : readGateway(rec(o.waypoint, `${path}.waypoint`), `${path}.waypoint`),
  };
}

// ---- Authorization ----

function readAuthorization(o: Record<string, unknown>): Authorization {
  const scope = enumName(o, 'scope', '', ['GLOBAL', 'NAMESPACE', 'WORKLOAD_SELECTOR']);
  return {
    name: name(o, 'name', ''),
    namespace: namespace(o, 'namespace', ''),
    scope: scope === 'GLOBAL' ? 'Global' : scope === 'NAMESPACE' ? 'Namespace' : 'WorkloadSelector',
    action: enumName(o, 'action', '', ['ALLOW', 'DENY']) === 'ALLOW' ? 'Allow' : 'Deny',
    dryRun: o.dry_run === true,
    rules: list(o.rules, 'rules').map((rule, ri) =>
      list(rec(rule, `rules[${ri}]`).clauses, `rules[${ri}].clauses`).map((clause, ci) => {
        const at = `rules[${ri}].clauses[${ci}]`;
        return list(rec(clause, at).matches, `${at}.matches`).map((m, mi) =>
          readMatch(rec(m, `${at}.matches[${mi}]`), `${at}.matches[${mi}]`),
        );
      }),
    ),
  };
}

function readMatch(o: Record<string, unknown>, path: string): Match {
  const strings = (key: string, principal: boolean) =>
    list(o[key], `${path}.${key}`).map((s, i) =>
      readStringMatch(rec(s, `${path}.${key}[${i}]`), `${path}.${key}[${i}]`, principal),
    );
  const cidrs = (key: string) =>
    list(o[key], `${path}.${key}`).map((c, i) => readCidr(rec(c, `${path}.${key}[${i}]`), `${path}.${key}[${i}]`));
  const ports = (key: string) =>
    list(o[key], `${path}.${key}`).map((p, i) => uint(p, `${path}.${key}[${i}]`, 1, MAX_PORT, 'a port'));
  const accounts = (key: string) =>
    list(o[key], `${path}.${key}`).map((a, i) => readAccount(rec(a, `${path}.${key}[${i}]`), `${path}.${key}[${i}]`));
  return {
    namespaces: strings('namespaces', false),
    notNamespaces: strings('not_namespaces', false),
    serviceAccounts: accounts('service_accounts'),
    notServiceAccounts: accounts('not_service_accounts'),
    principals: strings('principals', true),
    notPrincipals: strings('not_principals', true),
    sourceIps: cidrs('source_ips'),
    notSourceIps: cidrs('not_source_ips'),
    destinationIps: cidrs('destination_ips'),
    notDestinationIps: cidrs('not_destination_ips'),
    destinationPorts: ports('destination_ports'),
    notDestinationPorts: ports('not_destination_ports'),
  };
}

function readStringMatch(o: Record<string, unknown>, path: string, principal: boolean): StringMatch {
  const kind = o.match_type;
  if (kind === 'presence') return { kind: 'presence' };
  if (kind !== 'exact' && kind !== 'prefix' && kind !== 'suffix')
    return fail(path, 'expected one of exact, prefix, suffix, presence');
  const value = str(o, kind, path);
  if (value === '') fail(`${path}.${kind}`, 'empty match value (use presence to match any)');
  if (principal && value.startsWith('spiffe://')) fail(`${path}.${kind}`, 'principals are sent without "spiffe://"');
  return { kind, value };
}

function readCidr(o: Record<string, unknown>, path: string): Cidr {
  const address = ipBytes(o.address, `${path}.address`);
  const bits = address.includes(':') ? 128 : 32;
  return { address, prefixLength: uint(o.length, `${path}.length`, 0, bits, 'a prefix length') };
}

function readAccount(o: Record<string, unknown>, path: string): ServiceAccountMatch {
  return { namespace: namespace(o, 'namespace', path), serviceAccount: name(o, 'serviceAccount', path) };
}

const APP_PROTOCOLS: Readonly<Record<string, AppProtocol | null>> = {
  UNKNOWN: null,
  HTTP11: 'http',
  HTTP2: 'http2',
  GRPC: 'grpc',
  TCP: 'tcp',
  TLS: 'tcp',
};

/** app_protocol (Istio) and name (Ferry extension) of a Service port; unknown enum numbers read as unknown. */
function portExtras(p: unknown): { appProtocol?: AppProtocol; name?: string } {
  const o = typeof p === 'object' && p !== null ? (p as Record<string, unknown>) : {};
  const appProtocol = typeof o.app_protocol === 'string' ? (APP_PROTOCOLS[o.app_protocol] ?? null) : null;
  return {
    ...(appProtocol === null ? {} : { appProtocol }),
    ...(typeof o.name === 'string' && o.name !== '' ? { name: o.name } : {}),
  };
}

// ---- ferry.waypoint.v1.L7Resource ----

/** A waypoint's L7 object as held: a route or policy to compile, a waypoint Gateway, a ReferenceGrant. */
export type L7Value =
  | { readonly kind: 'HTTPRoute' | 'GRPCRoute' | 'TCPRoute' | 'AuthorizationPolicy'; readonly input: ObjectInput }
  | { readonly kind: 'Gateway'; readonly ref: string }
  | { readonly kind: 'ReferenceGrant'; readonly grant: string };

const L7_KINDS = ['HTTPRoute', 'GRPCRoute', 'TCPRoute', 'AuthorizationPolicy', 'Gateway', 'ReferenceGrant'] as const;
// Route kinds a ReferenceGrant permission may name besides HTTPRoute (the default when `kind` is absent).
const GRANT_KINDS = ['GRPCRoute', 'TCPRoute'] as const;
const MAX_L7_JSON = 1024 * 1024;

export function parseL7Resource(protos: XdsProtos, resource: string, bytes: Uint8Array): ConvertResult<L7Value> {
  return convert(resource, bytes, (b) => decodeMessage(protos.l7, b), readL7);
}

function readL7(o: Record<string, unknown>): L7Value {
  const kind = L7_KINDS.find((k) => k === o.kind);
  if (kind === undefined) fail('kind', `must be one of ${L7_KINDS.join(', ')}, got ${JSON.stringify(o.kind)}`);
  if (typeof o.json !== 'string' || o.json.length > MAX_L7_JSON) fail('json', 'must be a JSON string of at most 1 MiB');
  let v: unknown;
  try {
    v = JSON.parse(o.json);
  } catch (err) {
    fail('json', `not JSON: ${(err as Error).message}`);
  }
  const j = rec(v, 'json');
  const str = (key: string): string =>
    typeof j[key] === 'string' && j[key] !== '' ? j[key] : fail(`json.${key}`, 'must be a non-empty string');
  if (kind === 'Gateway') return { kind, ref: `${str('namespace')}/${str('name')}` };
  if (kind === 'ReferenceGrant') {
    const base = `${str('from')}|${str('to')}|${str('name')}`;
    if (j.kind === undefined || j.kind === 'HTTPRoute') return { kind, grant: base };
    const routeKind = GRANT_KINDS.find((k) => k === j.kind);
    if (routeKind === undefined) fail('json.kind', `must be HTTPRoute, ${GRANT_KINDS.join(' or ')}`);
    return { kind, grant: `${base}|${routeKind}` };
  }
  const ts = j.creationTimestampMs;
  if (ts !== null && ts !== undefined && !Number.isFinite(ts))
    fail('json.creationTimestampMs', 'must be a number or null');
  if (!Number.isInteger(j.sequence)) fail('json.sequence', 'must be an integer');
  return {
    kind,
    input: {
      namespace: str('namespace'),
      name: str('name'),
      creationTimestampMs: typeof ts === 'number' ? ts : null,
      sequence: j.sequence as number,
      spec: j.spec,
    },
  };
}
