// Client-side load balancing of a Service to one endpoint (docs/architecture.md "Configuration distribution (delta xDS)"): keep endpoints
// that are healthy (Istio's ONLY_HEALTHY default), on the caller's network, and able to serve the port, then
// choose weighted-random by Workload.capacity. Pure: randomness is injected (`random` returns [0, 1)).
// The caller may narrow the healthy candidates further (`admit`: outlier ejection, outlier-detection.ts).
import { ProxyError } from '../errors.ts';
import { isIpv6 } from './ip-addr.ts';
import type { Endpoint } from './mesh-view.ts';
import type { IpAddr, PortMap, Service, Workload } from './types.ts';

/** The endpoint chosen for one connection, with the address and target port to use. */
export interface ResolvedEndpoint {
  readonly workload: Workload;
  readonly ip: IpAddr;
  readonly targetPort: number;
}

/**
 * `standard`: the port must be declared on the service. `waypoint`: resolving a waypoint's own Service,
 * where the port need not be declared (the HBONE port is taken from the GatewayAddress instead).
 */
export type ServiceResolutionMode = 'standard' | 'waypoint';

export interface ResolveEndpointOptions {
  readonly random: () => number;
  /** The source's network; endpoints elsewhere need an E/W gateway, which Ferry does not do yet. */
  readonly network: string;
  readonly mode?: ServiceResolutionMode;
  /** Address family to prefer on dual-stack endpoints (the family the client dialed). */
  readonly preferIpv6?: boolean;
  /** Leaves endpoints out of this choice (ejected outliers); never returns none of a non-empty list. */
  readonly admit?: (healthy: readonly ResolvedEndpoint[]) => readonly ResolvedEndpoint[];
}

export type EndpointResult =
  | { readonly ok: true; readonly value: ResolvedEndpoint }
  | { readonly ok: false; readonly error: ProxyError };

/** Weighted-random choice by capacity among healthy candidates; undefined when none is healthy. */
export function pickEndpoint<T extends { readonly workload: Workload }>(
  candidates: readonly T[],
  random: () => number,
): T | undefined {
  let total = 0;
  for (const c of candidates) if (c.workload.status === 'Healthy') total += weightOf(c.workload);
  if (total === 0) return undefined;
  // Clamp: a faulty random source must not pick past the end or before the start.
  let remaining = Math.min(Math.max(random(), 0), 1 - Number.EPSILON) * total;
  let last: T | undefined;
  for (const c of candidates) {
    if (c.workload.status !== 'Healthy') continue;
    last = c;
    remaining -= weightOf(c.workload);
    if (remaining < 0) return c;
  }
  return last; // only reached through floating-point rounding at the top of the range
}

/**
 * Target port for `servicePort` on one endpoint: the endpoint's own non-zero mapping first (that is what
 * a named targetPort resolves to, per pod), else the service's numeric targetPort; null when neither.
 */
export function resolveTargetPort(service: Service, servicePort: number, endpointPorts: PortMap): number | null {
  const own = endpointPorts.get(servicePort);
  if (own !== undefined && own !== 0) return own;
  const declared = service.ports.find((p) => p.servicePort === servicePort);
  if (declared !== undefined && declared.targetPort !== 0) return declared.targetPort;
  return null;
}

/** Chooses one endpoint of `service` for a connection to `servicePort`. Never throws. */
export function resolveServiceEndpoint(
  service: Service,
  servicePort: number,
  endpoints: readonly Endpoint[],
  options: ResolveEndpointOptions,
): EndpointResult {
  const mode = options.mode ?? 'standard';
  const name = `${service.namespace}/${service.hostname}`;
  if (mode === 'standard' && !service.ports.some((p) => p.servicePort === servicePort)) {
    return { ok: false, error: new ProxyError('FERRY_UNKNOWN_PORT', `service ${name} has no port ${servicePort}`) };
  }
  const candidates: ResolvedEndpoint[] = [];
  for (const ep of endpoints) {
    const w = ep.workload;
    if (w.network !== options.network) continue;
    const ip = chooseAddress(w.addresses, options.preferIpv6 === true);
    if (ip === undefined) continue;
    const targetPort = resolveTargetPort(service, servicePort, ep.ports) ?? (mode === 'waypoint' ? servicePort : null);
    if (targetPort === null) continue; // named port this endpoint does not expose
    candidates.push({ workload: w, ip, targetPort });
  }
  const healthy = candidates.filter((c) => c.workload.status === 'Healthy');
  const chosen = pickEndpoint(options.admit === undefined ? healthy : options.admit(healthy), options.random);
  if (chosen === undefined) {
    return {
      ok: false,
      error: new ProxyError(
        'FERRY_NO_HEALTHY_UPSTREAM',
        `service ${name} has no healthy endpoint for port ${servicePort}`,
      ),
    };
  }
  return { ok: true, value: chosen };
}

/** First address of the preferred family, else the first address. */
export function chooseAddress(addresses: readonly IpAddr[], preferIpv6: boolean): IpAddr | undefined {
  return addresses.find((a) => isIpv6(a) === preferIpv6) ?? addresses[0];
}

function weightOf(w: Workload): number {
  // Istio treats an unset capacity as 1; never let a bad value remove or dominate an endpoint by accident.
  return Number.isFinite(w.capacity) && w.capacity >= 1 ? w.capacity : 1;
}
