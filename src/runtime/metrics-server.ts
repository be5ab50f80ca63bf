// The Prometheus endpoint on 15020 (docs/architecture.md "Processes and ports"): `/metrics` and `/stats/prometheus` (Istio's scrape path)
// serve one registry in the text format, with the registry's own content type. Knows nothing about which
// metrics exist: the ztunnel passes ZtunnelMetrics.registry, other processes their own.
import { HttpServer, type ListenAddress } from './http-server.ts';
import type { Logger } from './logger.ts';

/** What this server reads: runtime/prometheus.ts MetricsRegistry, or a prom-client Registry (the controller). */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsServerOptions {
  /** Istio: 0.0.0.0:15020. */
  readonly listen: ListenAddress;
  readonly registry: MetricsSource;
  readonly logger?: Logger;
}

export const METRICS_PATHS = ['/metrics', '/stats/prometheus'] as const;

/** The 15020 server. Call start() to listen. */
export function createMetricsServer(opts: MetricsServerOptions): HttpServer {
  const { registry } = opts;
  const scrape = async () => ({ status: 200, body: await registry.metrics(), contentType: registry.contentType });
  return new HttpServer({
    name: 'metrics',
    listen: opts.listen,
    ...(opts.logger === undefined ? {} : { logger: opts.logger }),
    routes: METRICS_PATHS.map((path) => ({ path, description: 'Prometheus metrics', methods: { GET: scrape } })),
  });
}
