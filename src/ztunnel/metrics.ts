// The ztunnel's Prometheus metrics with Istio's names and labels (docs/architecture.md "Telemetry",
// istio/ztunnel:src/proxy/metrics.rs). Each instance owns its own Registry (never the global one), so
// several ztunnels coexist in one test process. Hot path: labels are resolved once per connection;
// bytes are added to plain numbers on the recorder and flushed to the counters at close and whenever the
// registry is scraped, so a chunk costs one addition and long connections still show live byte counts.
// The registry is Ferry's own (src/runtime/prometheus.ts), not prom-client's: ≈ 20 MiB less RSS.

import { type ResponseFlags, TRAFFIC_LABEL_NAMES, type TrafficLabels } from '../mesh/traffic-labels.ts';
import { registerProcessMetrics } from '../runtime/process-metrics.ts';
import { MetricsRegistry, type ScalarFamily, type Series } from '../runtime/prometheus.ts';

export const METRIC_NAMES = {
  opened: 'istio_tcp_connections_opened_total',
  closed: 'istio_tcp_connections_closed_total',
  failed: 'istio_tcp_connections_failed_total',
  sentBytes: 'istio_tcp_sent_bytes_total',
  receivedBytes: 'istio_tcp_received_bytes_total',
  build: 'istio_build',
} as const;

/** Per-connection handle. Byte methods are the hot path: plain additions, no label lookups. */
export interface ConnectionRecorder {
  /** Request direction: bytes from the source toward the destination (istio_tcp_received_bytes_total). */
  recordSent(bytes: number): void;
  /** Response direction: bytes from the destination back to the source (istio_tcp_sent_bytes_total). */
  recordReceived(bytes: number): void;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** Counts the close (and the failure if flags ≠ '-'), flushes bytes. Idempotent. */
  close(responseFlags?: ResponseFlags): void;
}

/** A sample of an extra collector (e.g. BPF per-CPU counters, summed). */
export interface CollectorSample {
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface ExtraCollector {
  readonly name: string;
  readonly help: string;
  readonly kind: 'counter' | 'gauge';
  readonly labelNames?: readonly string[];
  /** Called on every scrape; returns the current absolute values. */
  collect(): readonly CollectorSample[] | Promise<readonly CollectorSample[]>;
}

export interface ZtunnelMetricsOptions {
  /** Value of istio_build{tag}: the Ferry version. */
  readonly buildTag?: string;
  /** Node's process_* and nodejs_* metrics in this registry (default true). */
  readonly processMetrics?: boolean;
}

/** The counters a recorder writes to, shared by all recorders of one ZtunnelMetrics. */
interface RecorderSink {
  readonly closed: ScalarFamily;
  readonly failed: ScalarFamily;
  readonly sentBytes: ScalarFamily;
  readonly receivedBytes: ScalarFamily;
  readonly live: Set<Recorder>;
}

class Recorder implements ConnectionRecorder {
  readonly #sink: RecorderSink;
  readonly #labels: TrafficLabels;
  // The byte series of this connection's labels, resolved once at the open.
  readonly #sentSeries: Series;
  readonly #receivedSeries: Series;
  #bytesSent = 0;
  #bytesReceived = 0;
  // Bytes counted here but not yet added to the counters.
  #pendingSent = 0;
  #pendingReceived = 0;
  #closed = false;

  constructor(sink: RecorderSink, labels: TrafficLabels) {
    this.#sink = sink;
    this.#labels = labels;
    // Byte series exist from the open on (at 0), as ztunnel's get_or_create does.
    this.#sentSeries = sink.sentBytes.series(labels);
    this.#receivedSeries = sink.receivedBytes.series(labels);
  }

  get bytesSent(): number {
    return this.#bytesSent;
  }
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  recordSent(bytes: number): void {
    this.#bytesSent += bytes;
    this.#pendingSent += bytes;
  }

  recordReceived(bytes: number): void {
    this.#bytesReceived += bytes;
    this.#pendingReceived += bytes;
  }

  /** Moves pending bytes into the counters. Istio's direction: received = request bytes, sent = response. */
  flush(): void {
    this.#receivedSeries.value += this.#pendingSent;
    this.#sentSeries.value += this.#pendingReceived;
    this.#pendingSent = 0;
    this.#pendingReceived = 0;
  }

  close(responseFlags: ResponseFlags = '-'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.flush();
    this.#sink.live.delete(this);
    // Like ztunnel's record_with_flag: the close (and the failure) carry the final flags; the open and
    // the byte series keep the flags of the open, '-'.
    const final =
      responseFlags === this.#labels.response_flags ? this.#labels : { ...this.#labels, response_flags: responseFlags };
    this.#sink.closed.inc(final, 1);
    if (responseFlags !== '-') this.#sink.failed.inc(final, 1);
  }
}

export class ZtunnelMetrics {
  readonly registry = new MetricsRegistry();
  readonly #opened: ScalarFamily;
  readonly #sink: RecorderSink;

  constructor(opts: ZtunnelMetricsOptions = {}) {
    const r = this.registry;
    const labelNames = TRAFFIC_LABEL_NAMES;
    this.#opened = r.counter({
      name: METRIC_NAMES.opened,
      help: 'The total number of TCP connections opened',
      labelNames,
    });
    const closed = r.counter({
      name: METRIC_NAMES.closed,
      help: 'The total number of TCP connections closed',
      labelNames,
    });
    const failed = r.counter({
      name: METRIC_NAMES.failed,
      help: 'The total number of TCP connections that failed to establish (unstable)',
      labelNames,
    });
    const sentBytes = r.counter({
      name: METRIC_NAMES.sentBytes,
      help: 'The size of total bytes sent during response in case of a TCP connection',
      labelNames,
    });
    const receivedBytes = r.counter({
      name: METRIC_NAMES.receivedBytes,
      help: 'The size of total bytes received during request in case of a TCP connection',
      labelNames,
    });
    // Flush live connections' bytes right before a scrape reads the byte counters.
    const live = new Set<Recorder>();
    r.onScrape(() => {
      for (const recorder of live) recorder.flush();
    });
    this.#sink = { closed, failed, sentBytes, receivedBytes, live };
    const build = r.gauge({
      name: METRIC_NAMES.build,
      help: 'Istio component build info',
      labelNames: ['component', 'tag'],
    });
    build.set({ component: 'ztunnel', tag: opts.buildTag ?? 'unknown' }, 1);
    if (opts.processMetrics ?? true) registerProcessMetrics(r);
  }

  /** Counts the open and returns the connection's recorder. Call once the labels are known. */
  openConnection(labels: TrafficLabels): ConnectionRecorder {
    // Copy: the caller's object may be reused; the recorder's labels must not change under it.
    const own = { ...labels };
    this.#opened.inc(own, 1);
    const recorder = new Recorder(this.#sink, own);
    this.#sink.live.add(recorder);
    return recorder;
  }

  /** Connections opened and not yet closed. */
  get liveConnections(): number {
    return this.#sink.live.size;
  }

  /** Adds a collector read on every scrape (e.g. BPF counters). Names must be unique in this registry. */
  addCollector(collector: ExtraCollector): void {
    // Absolute values from the source: replaced on every scrape, never accumulated.
    this.registry.collected(
      collector.kind,
      { name: collector.name, help: collector.help, labelNames: collector.labelNames ?? [] },
      () => collector.collect(),
    );
  }

  /** Prometheus text of this registry. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
