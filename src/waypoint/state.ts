// A waypoint's compiled view of its config (docs/architecture.md "How a connection flows through the code" step 6, §6): the mesh (to find the parent Service
// by VIP:port and the endpoints of backends), the HTTPRoutes compiled and attached per Service port, the
// L7 policies, and every problem found while compiling. Built once per config change; a request reads the
// state current when it started, so a config swap never disturbs requests in flight. Pure.
import type { CompileContext } from '../../gateway-api/compile.ts';
import { grantsAllow } from '../../gateway-api/compile-common.ts';
import { compileRoutes, type RouteInput } from '../../gateway-api/compile-routes.ts';
import { buildRouteTables, type RouteTables } from '../../gateway-api/route-table.ts';
import type { RouteStatus, ServiceBackend } from '../../gateway-api/types.ts';
import type { SpiffeId } from '../identity/spiffe-id.ts';
import { buildMeshView, type MeshView } from '../mesh/mesh-view.ts';
import type { Service, ServicePort } from '../mesh/types.ts';
import { compileL7Policy, type L7Policy, type L7PolicyProblem } from './authz/compile.ts';
import type { WaypointConfig, WaypointIdentity } from './config-types.ts';

export interface WaypointProblem {
  readonly object: string;
  readonly code: string;
  readonly field: string;
  readonly message: string;
}

export interface ServiceTarget {
  readonly service: Service;
  readonly port: ServicePort;
}

export interface WaypointState {
  readonly identity: WaypointIdentity;
  /** The network this waypoint is on (`--network`): endpoint choice prefers endpoints on it. */
  readonly network: string;
  readonly view: MeshView;
  readonly routes: RouteTables;
  readonly policies: readonly L7Policy[];
  readonly statuses: readonly RouteStatus[];
  readonly problems: readonly WaypointProblem[];
  /** The Service (and port) a CONNECT authority VIP:port names, when this waypoint serves it. */
  serviceByVip(ip: string, port: number): ServiceTarget | null;
  /** The mesh Service behind a route backend, or null. */
  backendService(backend: ServiceBackend): Service | null;
}

export interface StateSettings {
  readonly clusterDomain: string;
  readonly network: string;
}

const hostnameOf = (ns: string, name: string, domain: string) => `${name}.${ns}.svc.${domain}`;

/** `name` of a Service from its hostname `<name>.<ns>.svc.<domain>`. */
export function serviceName(svc: Service): string {
  return svc.name !== '' ? svc.name : (svc.hostname.split('.')[0] ?? svc.hostname);
}

export function buildWaypointState(
  config: WaypointConfig,
  identity: WaypointIdentity,
  settings: StateSettings,
  version = 0,
): WaypointState {
  const view = buildMeshView(config.mesh, { version });
  const self = hostnameOf(identity.namespace, identity.name, settings.clusterDomain);
  const byName = new Map<string, Service>();
  for (const s of view.services) byName.set(`${s.namespace}/${serviceName(s)}`, s);
  const gateways = new Set(config.waypointGateways);
  const grants = new Set(config.referenceGrants);
  const ctx: CompileContext = {
    service: (ns, name) => {
      const svc = byName.get(`${ns}/${name}`);
      return svc === undefined
        ? undefined
        : {
            ports: svc.ports.map((p) => ({
              port: p.servicePort,
              name: p.name ?? null,
              appProtocol: p.appProtocol ?? null,
            })),
          };
    },
    isWaypointGateway: (ns, name) => gateways.has(`${ns}/${name}`),
    referenceGrantAllows: grantsAllow(grants),
  };
  const problems: WaypointProblem[] = [];
  const inputs: RouteInput[] = [
    ...config.httpRoutes.map((input) => ({ kind: 'HTTPRoute' as const, input })),
    ...(config.grpcRoutes ?? []).map((input) => ({ kind: 'GRPCRoute' as const, input })),
    ...(config.tcpRoutes ?? []).map((input) => ({ kind: 'TCPRoute' as const, input })),
  ];
  const routeOut = compileRoutes(inputs, ctx);
  const statuses: RouteStatus[] = [...routeOut.statuses];
  const compiled = routeOut.routes;
  for (const { object, problem } of routeOut.problems) problems.push({ object, ...pick(problem) });
  const policies: L7Policy[] = [];
  for (const input of config.authorizationPolicies) {
    const out = compileL7Policy(input);
    problems.push(
      ...out.problems.map((p: L7PolicyProblem) => ({
        object: `AuthorizationPolicy/${input.namespace}/${input.name}`,
        ...pick(p),
      })),
    );
    if (out.policy !== null) policies.push(out.policy);
  }
  const served = (svc: Service): boolean =>
    svc.waypoint !== null &&
    svc.waypoint.destination.kind === 'hostname' &&
    svc.waypoint.destination.hostname === self &&
    svc.waypoint.destination.namespace === identity.namespace;
  return {
    identity,
    network: settings.network,
    view,
    routes: buildRouteTables(compiled, identity),
    policies: Object.freeze(policies), // frozen: authz indexes it once per state (authz/evaluate.ts)
    statuses,
    problems,
    serviceByVip(ip, port) {
      const service = view.serviceByVip('', ip);
      if (service === undefined || !served(service)) return null;
      const sp = service.ports.find((p) => p.servicePort === port);
      return sp === undefined ? null : { service, port: sp };
    },
    backendService(backend) {
      return byName.get(`${backend.namespace}/${backend.name}`) ?? null;
    },
  };
}

function pick(p: { code: string; field: string; message: string }) {
  return { code: p.code, field: p.field, message: p.message };
}

/** What the waypoint knows about the tunnel a request arrived on. */
export interface DownstreamContext {
  readonly target: ServiceTarget;
  readonly sourceIdentity: SpiffeId;
  readonly sourceIp: string;
  readonly protocol: 'http1' | 'http2';
}
