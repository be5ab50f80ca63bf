// The controller's Prometheus registry on 15020 (Kubernetes mode): Node's process metrics, whether this
// replica holds the Lease, and the xDS clients connected to it. Values are read at scrape time.
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

export interface ControllerMetricsSource {
  readonly leading: () => boolean;
  readonly xdsClients: () => number;
}

export function createControllerMetrics(source: ControllerMetricsSource): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'ferry_controller_leader',
    help: '1 while this replica holds the Lease (writes status, trust bundles and waypoints)',
    registers: [registry],
    collect() {
      this.set(source.leading() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'ferry_controller_xds_clients',
    help: 'ztunnels and waypoints connected to this replica over delta xDS',
    registers: [registry],
    collect() {
      this.set(source.xdsClients());
    },
  });
  return registry;
}
