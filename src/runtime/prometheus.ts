// A minimal Prometheus registry for the ztunnel and the waypoint: counters, gauges and histograms keyed by
// label values, and the text exposition format 0.0.4. Recording is a plain addition on a series object the
// caller keeps (labels are resolved once, when the series is created); everything else — formatting,
// cumulative buckets, collectors — happens on scrape. Replaces prom-client in those two processes, whose
// import alone costs ≈ 20 MiB of RSS with its dependencies (docs/performance.md, issue 12).

export type LabelValues = Readonly<Record<string, string>>;
export type MetricType = 'counter' | 'gauge' | 'histogram';

/** One time series of a counter or gauge. */
export interface Series {
  value: number;
}

/** One time series of a histogram: non-cumulative bucket counts (made cumulative on scrape). */
export interface HistogramSeries {
  observe(value: number): void;
}

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  /** Appends this family's sample lines (without the HELP/TYPE header). */
  write(out: string[]): void | Promise<void>;
}

export interface MetricOptions {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
}

/** A sample a collector produces on scrape. */
export interface CollectedSample {
  readonly labels?: LabelValues;
  readonly value: number;
}

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/** `a="x",b="y"` for the given names (missing values are ''), or '' without labels. */
function formatLabels(names: readonly string[], labels: LabelValues): string {
  return names.map((n) => `${n}="${escapeLabelValue(labels[n] ?? '')}"`).join(',');
}

const braces = (inner: string): string => (inner === '' ? '' : `{${inner}}`);

/** A counter or gauge family: a series per label combination, created on first use. */
export class ScalarFamily implements Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly #labelNames: readonly string[];
  readonly #series = new Map<string, { labels: string; series: Series }>();

  constructor(type: 'counter' | 'gauge', o: MetricOptions) {
    this.type = type;
    this.name = o.name;
    this.help = o.help;
    this.#labelNames = o.labelNames ?? [];
  }

  /** The series for these labels (created at 0). Keep it: adding to `.value` is the hot path. */
  series(labels: LabelValues = {}): Series {
    const key = this.#labelNames.map((n) => labels[n] ?? '').join('\u0000');
    let entry = this.#series.get(key);
    if (entry === undefined) {
      entry = { labels: braces(formatLabels(this.#labelNames, labels)), series: { value: 0 } };
      this.#series.set(key, entry);
    }
    return entry.series;
  }

  inc(labels: LabelValues, by = 1): void {
    this.series(labels).value += by;
  }

  set(labels: LabelValues, value: number): void {
    this.series(labels).value = value;
  }

  /** Drops every series (collectors that report absolute values replace them on each scrape). */
  reset(): void {
    this.#series.clear();
  }

  write(out: string[]): void {
    for (const { labels, series } of this.#series.values())
      out.push(`${this.name}${labels} ${formatNumber(series.value)}`);
  }
}

class Histogram implements HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: readonly number[];

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        this.counts[i] = (this.counts[i] as number) + 1;
        return;
      }
    }
  }
}

export class HistogramFamily implements Family {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly #labelNames: readonly string[];
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, { labels: string; histogram: Histogram }>();

  constructor(o: MetricOptions & { readonly buckets: readonly number[] }) {
    this.name = o.name;
    this.help = o.help;
    this.#labelNames = o.labelNames ?? [];
    this.#bounds = [...o.buckets].sort((a, b) => a - b);
  }

  series(labels: LabelValues = {}): HistogramSeries {
    const key = this.#labelNames.map((n) => labels[n] ?? '').join('\u0000');
    let entry = this.#series.get(key);
    if (entry === undefined) {
      entry = { labels: formatLabels(this.#labelNames, labels), histogram: new Histogram(this.#bounds) };
      this.#series.set(key, entry);
    }
    return entry.histogram;
  }

  write(out: string[]): void {
    for (const { labels, histogram } of this.#series.values()) {
      const prefix = labels === '' ? '' : `${labels},`;
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += histogram.counts[i] as number;
        out.push(`${this.name}_bucket{${prefix}le="${formatNumber(le)}"} ${cumulative}`);
      });
      out.push(`${this.name}_bucket{${prefix}le="+Inf"} ${histogram.count}`);
      out.push(`${this.name}_sum${braces(labels)} ${formatNumber(histogram.sum)}`);
      out.push(`${this.name}_count${braces(labels)} ${histogram.count}`);
    }
  }
}

/** Values read on every scrape (process figures, BPF counters): replaced, never accumulated. */
class CollectedFamily implements Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly #labelNames: readonly string[];
  readonly #collect: () => readonly CollectedSample[] | Promise<readonly CollectedSample[]>;

  constructor(
    type: 'counter' | 'gauge',
    o: MetricOptions,
    collect: () => readonly CollectedSample[] | Promise<readonly CollectedSample[]>,
  ) {
    this.type = type;
    this.name = o.name;
    this.help = o.help;
    this.#labelNames = o.labelNames ?? [];
    this.#collect = collect;
  }

  async write(out: string[]): Promise<void> {
    for (const s of await this.#collect()) {
      const names = this.#labelNames.length > 0 ? this.#labelNames : Object.keys(s.labels ?? {});
      out.push(`${this.name}${braces(formatLabels(names, s.labels ?? {}))} ${formatNumber(s.value)}`);
    }
  }
}

/** One process's metrics; serves as the metrics server's source (src/runtime/metrics-server.ts). */
export class MetricsRegistry {
  readonly contentType = CONTENT_TYPE;
  readonly #families = new Map<string, Family>();
  readonly #beforeScrape: Array<() => void> = [];

  counter(o: MetricOptions): ScalarFamily {
    return this.#add(new ScalarFamily('counter', o));
  }

  gauge(o: MetricOptions): ScalarFamily {
    return this.#add(new ScalarFamily('gauge', o));
  }

  histogram(o: MetricOptions & { readonly buckets: readonly number[] }): HistogramFamily {
    return this.#add(new HistogramFamily(o));
  }

  /** A family whose samples `collect` returns on every scrape. */
  collected(
    type: 'counter' | 'gauge',
    o: MetricOptions,
    collect: () => readonly CollectedSample[] | Promise<readonly CollectedSample[]>,
  ): void {
    this.#add(new CollectedFamily(type, o, collect));
  }

  /** Runs before every scrape (e.g. moving live connections' pending bytes into their series). */
  onScrape(fn: () => void): void {
    this.#beforeScrape.push(fn);
  }

  /** The text exposition of every family, in registration order. */
  async metrics(): Promise<string> {
    for (const fn of this.#beforeScrape) fn();
    const out: string[] = [];
    for (const f of this.#families.values()) {
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
      await f.write(out);
      out.push('');
    }
    return out.join('\n');
  }

  #add<F extends Family>(family: F): F {
    if (this.#families.has(family.name)) throw new Error(`metric ${family.name} is already registered`);
    this.#families.set(family.name, family);
    return family;
  }
}
