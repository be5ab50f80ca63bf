// planOutbound: decides where one captured outbound connection goes (docs/architecture.md "How a connection flows through the code", "HBONE (wire contract)",
// §2.6, §2.7; docs/architecture.md "How a connection flows through the code" steps 3 and 6). Pure: data plus a MeshView in, a plan value out; no sockets, clock,
// logger or hidden randomness. Expected outcomes (loop, no endpoint, unknown port or waypoint) are `reject`
// plans, never throws. The shell (outbound.ts) carries the plan out and labels telemetry from its fields.

import { ProxyError } from '../errors.ts';
import { endpointKey, formatAuthority } from '../hbone/authority.ts';
import { formatSpiffeId, parseSpiffeId, type SpiffeId } from '../identity/spiffe-id.ts';
import { type IpPort, isIpv6, isLoopback } from '../mesh/ip-addr.ts';
import { type ResolvedEndpoint, resolveServiceEndpoint } from '../mesh/load-balance.ts';
import { type MeshView, workloadIdentity } from '../mesh/mesh-view.ts';
import { type GatewayAddress, type IpAddr, type Service, serviceKey, type Workload } from '../mesh/types.ts';

/** Port every HBONE-capable ztunnel listens on (docs/architecture.md "Processes and ports"). */
export const DEFAULT_HBONE_PORT = 15008;

export interface OutboundRequest {
  /** The local workload that opened the connection. */
  readonly source: Workload;
  /** Original destination, as the application dialed it. */
  readonly dst: IpPort;
}

export interface OutboundOptions {
  /** Returns [0, 1); used for endpoint choice only. */
  readonly random: () => number;
  /** Our own proxy ports (15001, 15006, 15008, 15080): never a valid target (loop guard). */
  readonly selfPorts: ReadonlySet<number>;
  /** Addresses our own listeners live on (pod IPs of this node's workloads); loopback is always included. */
  readonly selfAddresses?: ReadonlySet<IpAddr>;
  /** HBONE port of destination ztunnels; default 15008 (tests on loopback may use another). */
  readonly hbonePort?: number;
  /**
   * Leaves ejected endpoints out of a service's choice (outlier detection, store/outlier-detection.ts);
   * `keyOf` names each candidate by its next hop, as `endpointKey(plan.actualDestination)` does.
   */
  readonly admit?: (
    healthy: readonly ResolvedEndpoint[],
    keyOf: (c: ResolvedEndpoint) => string,
  ) => readonly ResolvedEndpoint[];
}

/** Fields every plan carries, for access logs and metric labels (reporter=source). */
interface PlanContext {
  readonly source: Workload;
  readonly sourceIdentity: SpiffeId;
  readonly originalDestination: IpPort;
  /** The Service the client addressed (by VIP), if any. */
  readonly intendedService: Service | null;
  /** The workload that will terminate the connection, when known here (not behind a service waypoint). */
  readonly destinationWorkload: Workload | null;
}

export type OutboundPlan =
  | (PlanContext & {
      readonly kind: 'hbone';
      readonly via: 'direct' | 'waypoint';
      /** Next hop: the destination's or the waypoint's HBONE listener. */
      readonly actualDestination: IpPort;
      /** CONNECT `:authority`: `podIP:targetPort`, or the original `VIP:port` / `podIP:port` to a waypoint. */
      readonly authority: string;
      /** Identities the peer's certificate may carry (URI SAN); the pool keys on them too. */
      readonly expectedIdentities: readonly SpiffeId[];
      /** The waypoint workload when via = 'waypoint'. */
      readonly waypoint: Workload | null;
    })
  | (PlanContext & { readonly kind: 'tcp'; readonly actualDestination: IpPort })
  | (PlanContext & { readonly kind: 'passthrough'; readonly actualDestination: IpPort })
  | (PlanContext & { readonly kind: 'reject'; readonly error: ProxyError });

export type HbonePlan = Extract<OutboundPlan, { kind: 'hbone' }>;

/** Decides how to proxy one outbound connection (ztunnel's build_request). */
export function planOutbound(req: OutboundRequest, view: MeshView, opts: OutboundOptions): OutboundPlan {
  const { source, dst } = req;
  const base: PlanContext = {
    source,
    sourceIdentity: workloadIdentity(source),
    originalDestination: dst,
    intendedService: null,
    destinationWorkload: null,
  };
  if (isSelfCall(dst, opts)) return selfCall(base, dst);
  const hbonePort = opts.hbonePort ?? DEFAULT_HBONE_PORT;

  const service = view.serviceByVip(source.network, dst.ip);
  if (service !== undefined) {
    const ctx: PlanContext = { ...base, intendedService: service };
    // Service-addressed traffic uses the service's waypoint, never the endpoint's (§2.7: addressing decides).
    if (service.waypoint !== null && !isFromWaypoint(source, service.waypoint, view)) {
      return toWaypoint(ctx, service.waypoint, formatAuthority(dst.ip, dst.port), view, opts);
    }
    const admit = opts.admit;
    const picked = resolveServiceEndpoint(service, dst.port, view.endpointsOf(service), {
      random: opts.random,
      network: source.network,
      preferIpv6: isIpv6(dst.ip),
      // The next hop: the pod's HBONE port, or its target port when it is not in the mesh (TCP).
      ...(admit === undefined
        ? {}
        : {
            admit: (healthy) =>
              admit(healthy, (c) =>
                endpointKey({ ip: c.ip, port: c.workload.protocol === 'TCP' ? c.targetPort : hbonePort }),
              ),
          }),
    });
    if (!picked.ok) return { ...ctx, kind: 'reject', error: picked.error };
    const { workload, ip, targetPort } = picked.value;
    const target = { ...ctx, destinationWorkload: workload };
    if (workload.protocol === 'TCP') return tcpTo(target, { ip, port: targetPort }, opts);
    return {
      ...target,
      kind: 'hbone',
      via: 'direct',
      actualDestination: { ip, port: hbonePort },
      authority: formatAuthority(ip, targetPort),
      expectedIdentities: identities([workloadIdentity(workload)], service.subjectAltNames),
      waypoint: null,
    };
  }

  const workload = view.workloadByAddress(source.network, dst.ip);
  if (workload !== undefined) {
    const ctx: PlanContext = { ...base, destinationWorkload: workload };
    // A workload waypoint forwarding to its own workload must not be sent back to itself.
    if (workload.waypoint !== null && !isFromWaypoint(source, workload.waypoint, view)) {
      return toWaypoint(ctx, workload.waypoint, formatAuthority(dst.ip, dst.port), view, opts);
    }
    if (workload.protocol === 'TCP') return tcpTo(ctx, dst, opts);
    return {
      ...ctx,
      kind: 'hbone',
      via: 'direct',
      actualDestination: { ip: dst.ip, port: hbonePort },
      authority: formatAuthority(dst.ip, dst.port),
      expectedIdentities: [workloadIdentity(workload)],
      waypoint: null,
    };
  }

  // Not a mesh address: forward unchanged (ztunnel's passthrough; no source spoofing outbound).
  return { ...base, kind: 'passthrough', actualDestination: dst };
}

/** Where a waypoint is reached, and which identities it may present. */
interface ResolvedWaypoint {
  readonly workload: Workload;
  readonly address: IpPort;
  readonly identities: readonly SpiffeId[];
}

type WaypointResult =
  | { readonly ok: true; readonly value: ResolvedWaypoint }
  | { readonly ok: false; readonly error: ProxyError };

/**
 * Resolves a GatewayAddress (reference §2.7, ztunnel's fetch_waypoint): an address names the waypoint pod
 * or its Service VIP; a hostname names its Service. Services resolve to a healthy pod without requiring the
 * HBONE port to be a declared service port.
 */
export function resolveWaypoint(
  gateway: GatewayAddress,
  source: Workload,
  view: MeshView,
  opts: Pick<OutboundOptions, 'random' | 'admit'>,
  preferIpv6 = false,
): WaypointResult {
  const port = gateway.hboneMtlsPort;
  const dest = gateway.destination;
  let service: Service | undefined;
  if (dest.kind === 'address') {
    const pod = view.workloadByAddress(dest.address.network, dest.address.address);
    if (pod !== undefined) {
      const address = { ip: dest.address.address, port };
      return { ok: true, value: { workload: pod, address, identities: [workloadIdentity(pod)] } };
    }
    service = view.serviceByVip(dest.address.network, dest.address.address);
  } else {
    service = view.serviceByKey(serviceKey(dest.namespace, dest.hostname));
  }
  if (service === undefined) {
    return {
      ok: false,
      error: new ProxyError('FERRY_UNKNOWN_TARGET', `waypoint ${describeGateway(gateway)} not found`),
    };
  }
  const admit = opts.admit;
  const picked = resolveServiceEndpoint(service, port, view.endpointsOf(service), {
    random: opts.random,
    network: source.network,
    mode: 'waypoint',
    preferIpv6,
    ...(admit === undefined ? {} : { admit: (healthy) => admit(healthy, (c) => endpointKey({ ip: c.ip, port })) }),
  });
  if (!picked.ok) {
    const why = `waypoint ${describeGateway(gateway)}: ${picked.error.message}`;
    return { ok: false, error: new ProxyError(picked.error.code, why, { cause: picked.error }) };
  }
  const { workload, ip } = picked.value;
  const ids = identities([workloadIdentity(workload)], service.subjectAltNames);
  return { ok: true, value: { workload, address: { ip, port }, identities: ids } };
}

/** True when `source` is (one of the pods of) the waypoint `gateway` points at (ztunnel's check_from_waypoint). */
export function isFromWaypoint(source: Workload, gateway: GatewayAddress, view: MeshView): boolean {
  const dest = gateway.destination;
  let service: Service | undefined;
  if (dest.kind === 'address') {
    const pod = view.workloadByAddress(dest.address.network, dest.address.address);
    if (pod !== undefined) return pod.uid === source.uid;
    service = view.serviceByVip(dest.address.network, dest.address.address);
  } else {
    service = view.serviceByKey(serviceKey(dest.namespace, dest.hostname));
  }
  return service !== undefined && view.endpointsOf(service).some((ep) => ep.workload.uid === source.uid);
}

function toWaypoint(
  ctx: PlanContext,
  gateway: GatewayAddress,
  authority: string,
  view: MeshView,
  opts: OutboundOptions,
): OutboundPlan {
  const resolved = resolveWaypoint(gateway, ctx.source, view, opts, isIpv6(ctx.originalDestination.ip));
  if (!resolved.ok) return { ...ctx, kind: 'reject', error: resolved.error };
  const { workload, address, identities: ids } = resolved.value;
  return {
    ...ctx,
    kind: 'hbone',
    via: 'waypoint',
    actualDestination: address,
    authority,
    expectedIdentities: ids,
    waypoint: workload,
  };
}

function tcpTo(ctx: PlanContext, target: IpPort, opts: OutboundOptions): OutboundPlan {
  // The resolved target may differ from the dialed one (VIP → pod:targetPort): guard it too.
  if (isSelfCall(target, opts)) return selfCall(ctx, target);
  return { ...ctx, kind: 'tcp', actualDestination: target };
}

function isSelfCall(target: IpPort, opts: Pick<OutboundOptions, 'selfPorts' | 'selfAddresses'>): boolean {
  if (!opts.selfPorts.has(target.port)) return false;
  return isLoopback(target.ip) || opts.selfAddresses?.has(target.ip) === true;
}

function selfCall(ctx: PlanContext, target: IpPort): OutboundPlan {
  const where = formatAuthority(target.ip, target.port);
  return {
    ...ctx,
    kind: 'reject',
    error: new ProxyError('FERRY_SELF_CALL', `refusing to proxy to our own port ${where}`),
  };
}

/** Workload identity first, then the service's extra SANs that are SPIFFE IDs, without duplicates. */
function identities(first: readonly SpiffeId[], extraSans: readonly string[]): readonly SpiffeId[] {
  const seen = new Set(first.map(formatSpiffeId));
  const out = [...first];
  for (const san of extraSans) {
    const parsed = parseSpiffeId(san);
    if (!parsed.ok || seen.has(san)) continue; // a non-SPIFFE SAN can never match a mesh certificate
    seen.add(san);
    out.push(parsed.value);
  }
  return out;
}

function describeGateway(gateway: GatewayAddress): string {
  const d = gateway.destination;
  return d.kind === 'address' ? `${d.address.network}/${d.address.address}` : `${d.namespace}/${d.hostname}`;
}
