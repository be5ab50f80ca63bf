// MeshConfig → plain JSON-able object in the static config file's own shape (camelCase keys, StringMatch as
// `{exact: x}` / `{presence: {}}`, CIDRs as "ip/len", VIPs as "network/ip"). For /config_dump; feeding the
// output back to parseLocalConfig yields an equal MeshConfig.
import { formatCidr } from '../ip-addr.ts';
import type {
  Authorization,
  GatewayAddress,
  Match,
  MeshConfig,
  NetworkAddress,
  PortMap,
  Service,
  StringMatch,
  Workload,
} from '../types.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const networkAddress = (a: NetworkAddress): string => `${a.network}/${a.address}`;

function gateway(g: GatewayAddress | null): Json {
  if (g === null) return null;
  const d = g.destination;
  const destination = d.kind === 'address' ? networkAddress(d.address) : `${d.namespace}/${d.hostname}`;
  return { destination, hboneMtlsPort: g.hboneMtlsPort };
}

function portMap(ports: PortMap): Json {
  return Object.fromEntries([...ports].map(([from, to]) => [String(from), to]));
}

function stringMatch(m: StringMatch): Json {
  return m.kind === 'presence' ? { presence: {} } : { [m.kind]: m.value };
}

function match(m: Match): Json {
  const out: { [key: string]: Json } = {};
  const put = (key: keyof Match, values: Json[]) => {
    if (values.length > 0) out[key] = values;
  };
  put('namespaces', m.namespaces.map(stringMatch));
  put('notNamespaces', m.notNamespaces.map(stringMatch));
  put(
    'serviceAccounts',
    m.serviceAccounts.map((sa) => ({ namespace: sa.namespace, serviceAccount: sa.serviceAccount })),
  );
  put(
    'notServiceAccounts',
    m.notServiceAccounts.map((sa) => ({ namespace: sa.namespace, serviceAccount: sa.serviceAccount })),
  );
  put('principals', m.principals.map(stringMatch));
  put('notPrincipals', m.notPrincipals.map(stringMatch));
  put('sourceIps', m.sourceIps.map(formatCidr));
  put('notSourceIps', m.notSourceIps.map(formatCidr));
  put('destinationIps', m.destinationIps.map(formatCidr));
  put('notDestinationIps', m.notDestinationIps.map(formatCidr));
  put('destinationPorts', [...m.destinationPorts]);
  put('notDestinationPorts', [...m.notDestinationPorts]);
  return out;
}

function workload(w: Workload): Json {
  return {
    uid: w.uid,
    name: w.name,
    namespace: w.namespace,
    workloadIps: [...w.addresses],
    network: w.network,
    protocol: w.protocol,
    trustDomain: w.trustDomain,
    serviceAccount: w.serviceAccount,
    node: w.node,
    waypoint: gateway(w.waypoint),
    workloadName: w.workloadName,
    workloadType: w.workloadType,
    canonicalName: w.canonicalName,
    canonicalRevision: w.canonicalRevision,
    clusterId: w.clusterId,
    status: w.status,
    capacity: w.capacity,
    authorizationPolicies: [...w.authorizationPolicies],
    services: Object.fromEntries([...w.services].map(([key, ports]) => [key, portMap(ports)])),
  };
}

function service(s: Service): Json {
  return {
    name: s.name,
    namespace: s.namespace,
    hostname: s.hostname,
    vips: s.vips.map(networkAddress),
    ports: Object.fromEntries(s.ports.map((p) => [String(p.servicePort), p.targetPort])),
    subjectAltNames: [...s.subjectAltNames],
    waypoint: gateway(s.waypoint),
  };
}

function policy(p: Authorization): Json {
  return {
    name: p.name,
    namespace: p.namespace,
    scope: p.scope,
    action: p.action,
    dryRun: p.dryRun,
    rules: p.rules.map((rule) => rule.map((clause) => clause.map(match))),
  };
}

/** Plain-object form of a MeshConfig (no Maps, no undefined), in the static file's shape. */
export function serializeMeshConfig(config: MeshConfig): { workloads: Json[]; services: Json[]; policies: Json[] } {
  return {
    workloads: config.workloads.map(workload),
    services: config.services.map(service),
    policies: config.policies.map(policy),
  };
}
