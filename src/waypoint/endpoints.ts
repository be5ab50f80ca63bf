// Which pod of a backend Service a waypoint request goes to, and how it is reached: the ztunnel's load
// balancing (healthy endpoints, weighted by capacity, service port → target port), then HBONE to the
// pod's 15008 with its identity when it is in the mesh, plain TCP otherwise. Endpoints the outlier
// detector ejected (their connects kept failing) are left out of the choice while others remain.
import { resolveServiceEndpoint } from '../mesh/load-balance.ts';
import { workloadIdentity } from '../mesh/mesh-view.ts';
import type { OutlierDetector } from '../mesh/outlier-detection.ts';
import type { Service, Workload } from '../mesh/types.ts';
import type { WaypointState } from './state.ts';
import { nextHopKey } from './upstream/client.ts';
import type { UpstreamEndpoint } from './upstream/types.ts';

export function endpointFor(workload: Workload, ip: string, port: number, hbonePort: number): UpstreamEndpoint {
  return {
    ip,
    port,
    tunnel:
      workload.protocol === 'HBONE'
        ? { kind: 'hbone', hbonePort, identity: workloadIdentity(workload) }
        : { kind: 'plain' },
    workload,
  };
}

/** One endpoint of `service` for `port`, or null when none is healthy. */
export function pickServiceEndpoint(
  state: WaypointState,
  service: Service,
  port: number,
  random: () => number,
  hbonePort: number,
  outliers?: OutlierDetector,
): UpstreamEndpoint | null {
  const now = Date.now();
  const picked = resolveServiceEndpoint(service, port, state.view.endpointsOf(service), {
    random,
    network: state.network,
    ...(outliers === undefined
      ? {}
      : {
          admit: (healthy) =>
            outliers.admit(healthy, (c) => nextHopKey(endpointFor(c.workload, c.ip, c.targetPort, hbonePort)), now),
        }),
  });
  if (!picked.ok) return null;
  return endpointFor(picked.value.workload, picked.value.ip, picked.value.targetPort, hbonePort);
}
