// Domain → xDS resources on the controller side (docs/architecture.md "Configuration distribution (delta xDS)", docs/architecture.md "Configuration distribution (delta xDS)"):
// MeshConfig → istio.workload.Address (workload | service) and istio.security.Authorization messages,
// encoded once, each named and versioned. Names: workloads by uid, services `namespace/hostname`,
// policies `namespace/name`; addresses carry `network/ip` aliases. Version = hash of the encoded bytes, so
// an unchanged resource keeps its version across pushes and controller restarts. Pure apart from hashing.
import { createHash } from 'node:crypto';
import { parseIp } from '../mesh/ip-addr.ts';
import type {
  Authorization,
  Cidr,
  GatewayAddress,
  IpAddr,
  Match,
  MeshConfig,
  NetworkAddress,
  Service,
  StringMatch,
  Workload,
} from '../mesh/types.ts';
import { policyKey, serviceKey } from '../mesh/types.ts';
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  encodeMessage,
  type XdsProtos,
  type XdsTypeUrl,
} from '../xds/proto.ts';
import type { L7Entry } from './translate/types.ts';

/** One encoded resource: `value` is the body of its google.protobuf.Any. */
export interface XdsResource {
  readonly version: string;
  readonly value: Uint8Array;
  readonly aliases: readonly string[];
}

export type ResourceMap = ReadonlyMap<string, XdsResource>;

/** Encodes `message` (plain object, snake_case) with `type` and versions it by content. */
export function encodeResource(
  type: XdsProtos['address'],
  message: unknown,
  aliases: readonly string[] = [],
): XdsResource {
  const value = encodeMessage(type, message);
  return { version: contentVersion(value), value, aliases };
}

/** First 16 hex digits of SHA-256: collisions are negligible for a mesh's resource count. */
export function contentVersion(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/** Every resource of a MeshConfig, by type URL then resource name. Later duplicates win, as in MeshView. */
export function meshResources(protos: XdsProtos, config: MeshConfig): ReadonlyMap<XdsTypeUrl, ResourceMap> {
  const addresses = new Map<string, XdsResource>();
  for (const w of config.workloads) {
    const aliases = w.addresses.map((ip) => `${w.network}/${ip}`);
    addresses.set(w.uid, encodeResource(protos.address, { workload: workloadMessage(w) }, aliases));
  }
  for (const s of config.services) {
    const aliases = s.vips.map((v) => `${v.network}/${v.address}`);
    addresses.set(
      serviceKey(s.namespace, s.hostname),
      encodeResource(protos.address, { service: serviceMessage(s) }, aliases),
    );
  }
  const authorizations = new Map<string, XdsResource>();
  for (const p of config.policies) {
    authorizations.set(policyKey(p.namespace, p.name), encodeResource(protos.authorization, authorizationMessage(p)));
  }
  return new Map<XdsTypeUrl, ResourceMap>([
    [ADDRESS_TYPE_URL, addresses],
    [AUTHORIZATION_TYPE_URL, authorizations],
  ]);
}

/** 4 bytes for IPv4, 16 for IPv6 (IPv4-mapped stays 16, as written). */
export function ipToBytes(ip: IpAddr): Buffer {
  const parsed = parseIp(ip);
  if (parsed === null) throw new TypeError(`not an IP address: ${JSON.stringify(ip)}`); // domain values are validated
  const length = parsed.family === 4 ? 4 : 16;
  const out = Buffer.alloc(length);
  let value = parsed.value;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}

function networkAddressMessage(a: NetworkAddress): Record<string, unknown> {
  return { network: a.network, address: ipToBytes(a.address) };
}

function gatewayMessage(g: GatewayAddress | null): Record<string, unknown> | null {
  if (g === null) return null;
  const d = g.destination;
  return d.kind === 'address'
    ? { address: networkAddressMessage(d.address), hbone_mtls_port: g.hboneMtlsPort }
    : { hostname: { namespace: d.namespace, hostname: d.hostname }, hbone_mtls_port: g.hboneMtlsPort };
}

/** istio.workload.Workload for a domain workload (every field explicit, no elision). */
export function workloadMessage(w: Workload): Record<string, unknown> {
  const services: Record<string, unknown> = {};
  for (const [key, ports] of w.services) {
    services[key] = { ports: [...ports].map(([service_port, target_port]) => ({ service_port, target_port })) };
  }
  return {
    uid: w.uid,
    name: w.name,
    namespace: w.namespace,
    addresses: w.addresses.map(ipToBytes),
    network: w.network,
    tunnel_protocol: w.protocol === 'HBONE' ? 'HBONE' : 'NONE',
    trust_domain: w.trustDomain,
    service_account: w.serviceAccount,
    waypoint: gatewayMessage(w.waypoint),
    node: w.node,
    canonical_name: w.canonicalName,
    canonical_revision: w.canonicalRevision,
    workload_type: w.workloadType.toUpperCase(),
    workload_name: w.workloadName,
    services,
    authorization_policies: [...w.authorizationPolicies],
    status: w.status === 'Healthy' ? 'HEALTHY' : 'UNHEALTHY',
    cluster_id: w.clusterId,
    capacity: { value: w.capacity },
  };
}

export function serviceMessage(s: Service): Record<string, unknown> {
  return {
    name: s.name,
    namespace: s.namespace,
    hostname: s.hostname,
    addresses: s.vips.map(networkAddressMessage),
    ports: s.ports.map((p) => ({
      service_port: p.servicePort,
      target_port: p.targetPort,
      app_protocol: APP_PROTOCOL_WIRE[p.appProtocol ?? 'unknown'],
      name: p.name ?? '',
    })),
    subject_alt_names: [...s.subjectAltNames],
    waypoint: gatewayMessage(s.waypoint),
  };
}

function stringMatchMessage(m: StringMatch): Record<string, unknown> {
  return m.kind === 'presence' ? { presence: {} } : { [m.kind]: m.value };
}

function cidrMessage(c: Cidr): Record<string, unknown> {
  return { address: ipToBytes(c.address), length: c.prefixLength };
}

function matchMessage(m: Match): Record<string, unknown> {
  const accounts = (list: Match['serviceAccounts']) =>
    list.map((a) => ({ namespace: a.namespace, serviceAccount: a.serviceAccount }));
  return {
    namespaces: m.namespaces.map(stringMatchMessage),
    not_namespaces: m.notNamespaces.map(stringMatchMessage),
    service_accounts: accounts(m.serviceAccounts),
    not_service_accounts: accounts(m.notServiceAccounts),
    principals: m.principals.map(stringMatchMessage),
    not_principals: m.notPrincipals.map(stringMatchMessage),
    source_ips: m.sourceIps.map(cidrMessage),
    not_source_ips: m.notSourceIps.map(cidrMessage),
    destination_ips: m.destinationIps.map(cidrMessage),
    not_destination_ips: m.notDestinationIps.map(cidrMessage),
    destination_ports: [...m.destinationPorts],
    not_destination_ports: [...m.notDestinationPorts],
  };
}

export function authorizationMessage(p: Authorization): Record<string, unknown> {
  const scope = p.scope === 'Global' ? 'GLOBAL' : p.scope === 'Namespace' ? 'NAMESPACE' : 'WORKLOAD_SELECTOR';
  return {
    name: p.name,
    namespace: p.namespace,
    scope,
    action: p.action === 'Allow' ? 'ALLOW' : 'DENY',
    dry_run: p.dryRun,
    rules: p.rules.map((rule) => ({ clauses: rule.map((clause) => ({ matches: clause.map(matchMessage) })) })),
  };
}

const APP_PROTOCOL_WIRE = { unknown: 'UNKNOWN', http: 'HTTP11', http2: 'HTTP2', grpc: 'GRPC', tcp: 'TCP' } as const;

/** Waypoint objects as ferry.waypoint.v1.L7Resource, by name. */
export function l7Resources(protos: XdsProtos, entries: readonly L7Entry[]): ResourceMap {
  const out = new Map<string, XdsResource>();
  for (const e of entries) out.set(e.name, encodeResource(protos.l7, { kind: e.kind, json: e.json }));
  return out;
}
