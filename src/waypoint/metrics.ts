// The waypoint's Istio HTTP metrics (reporter="waypoint"): istio_requests_total,
// istio_request_duration_milliseconds, istio_request_bytes, istio_response_bytes, with Istio's standard
// labels (the ztunnel's traffic labels plus response_code and grpc_response_status). One registry per
// instance, so several waypoints can share a test process. The registry is Ferry's own
// (src/runtime/prometheus.ts): a request adds to plain numbers of series resolved once per label set; the
// text is built only on scrape.
import type { SpiffeId } from '../identity/spiffe-id.ts';
import { TRAFFIC_LABEL_NAMES, trafficLabelsFor } from '../mesh/traffic-labels.ts';
import type { Service, Workload } from '../mesh/types.ts';
import { registerProcessMetrics } from '../runtime/process-metrics.ts';
import {
  type HistogramFamily,
  type HistogramSeries,
  MetricsRegistry,
  type ScalarFamily,
  type Series,
} from '../runtime/prometheus.ts';

const REQUEST_LABELS = [...TRAFFIC_LABEL_NAMES, 'response_code', 'grpc_response_status'] as const;
type RequestLabel = (typeof REQUEST_LABELS)[number];

// Istio's default buckets for the duration and size histograms.
const DURATION_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
];
const SIZE_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000];

const MAX_CACHED_CHILDREN = 10_000;

interface Children {
  readonly requests: Series;
  readonly duration: HistogramSeries;
  readonly requestBytes: HistogramSeries;
  readonly responseBytes: HistogramSeries;
}

export interface RequestRecord {
  readonly source: Workload | null;
  readonly sourceIdentity: SpiffeId | null;
  readonly service: Service | null;
  readonly destination: Workload | null;
  readonly destinationIdentity: SpiffeId | null;
  readonly protocol: 'http' | 'grpc';
  readonly responseCode: number;
  readonly grpcStatus: string | null;
  /** Envoy response flags ('-' when none: UH, UF, UC, UT, URX, NR, DC...). */
  readonly responseFlags: string;
  readonly durationMs: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
}

export class WaypointMetrics {
  readonly registry = new MetricsRegistry();
  readonly #requests: ScalarFamily;
  readonly #duration: HistogramFamily;
  readonly #requestBytes: HistogramFamily;
  readonly #responseBytes: HistogramFamily;

  constructor(opts: { readonly processMetrics?: boolean } = {}) {
    const r = this.registry;
    const labelNames = REQUEST_LABELS;
    this.#requests = r.counter({ name: 'istio_requests_total', help: 'Total requests', labelNames });
    this.#duration = r.histogram({
      name: 'istio_request_duration_milliseconds',
      help: 'Request duration in milliseconds',
      labelNames,
      buckets: DURATION_BUCKETS,
    });
    this.#requestBytes = r.histogram({
      name: 'istio_request_bytes',
      help: 'Request body size in bytes',
      labelNames,
      buckets: SIZE_BUCKETS,
    });
    this.#responseBytes = r.histogram({
      name: 'istio_response_bytes',
      help: 'Response body size in bytes',
      labelNames,
      buckets: SIZE_BUCKETS,
    });
    if (opts.processMetrics !== false) registerProcessMetrics(r);
  }

  /** Label resolution is the costly part of a record: children are cached per label combination. */
  readonly #children = new Map<string, Children>();

  record(r: RequestRecord): void {
    const key = [
      r.source?.uid ?? '',
      r.sourceIdentity === null ? '' : `${r.sourceIdentity.namespace}/${r.sourceIdentity.serviceAccount}`,
      r.service?.hostname ?? '',
      r.destination?.uid ?? '',
      r.protocol,
      r.responseCode,
      r.grpcStatus ?? '',
      r.responseFlags,
    ].join('|');
    let c = this.#children.get(key);
    if (c === undefined) {
      if (this.#children.size >= MAX_CACHED_CHILDREN) this.#children.clear();
      c = this.#resolve(r);
      this.#children.set(key, c);
    }
    c.requests.value++;
    c.duration.observe(r.durationMs);
    c.requestBytes.observe(r.requestBytes);
    c.responseBytes.observe(r.responseBytes);
  }

  #resolve(r: RequestRecord): Children {
    const labels: Record<RequestLabel, string> = {
      ...trafficLabelsFor({
        reporter: 'waypoint',
        sourceWorkload: r.source,
        sourceIdentity: r.sourceIdentity,
        destinationWorkload: r.destination,
        destinationService: r.service,
        destinationIdentity: r.destinationIdentity,
        mtls: true,
      }),
      response_code: String(r.responseCode),
      grpc_response_status: r.grpcStatus ?? '',
    };
    labels.request_protocol = r.protocol;
    labels.response_flags = r.responseFlags;
    return {
      requests: this.#requests.series(labels),
      duration: this.#duration.series(labels),
      requestBytes: this.#requestBytes.series(labels),
      responseBytes: this.#responseBytes.series(labels),
    };
  }
}
