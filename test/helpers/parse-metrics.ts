// A small Prometheus text-format parser for tests (ztunnel's ParsedMetrics::query): parse a scrape, then
// query samples by name and a subset of labels. Strict: a malformed line throws, so a broken exposition
// fails the test instead of being skipped.

export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export class ParsedMetrics {
  readonly samples: readonly MetricSample[];
  /** `# TYPE` per metric family name. */
  readonly types: ReadonlyMap<string, string>;

  constructor(samples: readonly MetricSample[], types: ReadonlyMap<string, string>) {
    this.samples = samples;
    this.types = types;
  }

  /** Samples named `name` whose labels include every given label. */
  query(name: string, labels: Readonly<Record<string, string>> = {}): MetricSample[] {
    const wanted = Object.entries(labels);
    return this.samples.filter((s) => s.name === name && wanted.every(([k, v]) => s.labels[k] === v));
  }

  /** Sum of the matching samples' values (0 when none match). */
  sum(name: string, labels: Readonly<Record<string, string>> = {}): number {
    return this.query(name, labels).reduce((acc, s) => acc + s.value, 0);
  }

  has(name: string): boolean {
    return this.samples.some((s) => s.name === name);
  }
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*/;

export function parseMetrics(text: string): ParsedMetrics {
  const samples: MetricSample[] = [];
  const types = new Map<string, string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+TYPE\s+(\S+)\s+(\S+)$/.exec(line);
      if (m !== null) types.set(m[1] as string, m[2] as string);
      continue;
    }
    samples.push(parseSample(line, i + 1));
  }
  return new ParsedMetrics(samples, types);
}

function parseSample(line: string, lineNo: number): MetricSample {
  const fail = (why: string): never => {
    throw new Error(`metrics line ${lineNo}: ${why}: ${line}`);
  };
  const nameMatch = NAME_RE.exec(line);
  if (nameMatch === null) return fail('bad metric name');
  const name = nameMatch[0];
  let pos = name.length;
  const labels: Record<string, string> = {};
  if (line[pos] === '{') {
    pos++;
    while (line[pos] !== '}') {
      const ln = LABEL_NAME_RE.exec(line.slice(pos));
      if (ln === null) return fail('bad label name');
      pos += ln[0].length;
      if (line[pos] !== '=' || line[pos + 1] !== '"') return fail('expected ="');
      pos += 2;
      let value = '';
      for (;;) {
        const c = line[pos];
        if (c === undefined) return fail('unterminated label value');
        pos++;
        if (c === '"') break;
        if (c === '\\') {
          const e = line[pos++];
          value += e === 'n' ? '\n' : e === '\\' ? '\\' : e === '"' ? '"' : fail('bad escape');
        } else {
          value += c;
        }
      }
      labels[ln[0]] = value;
      if (line[pos] === ',') pos++;
      else if (line[pos] !== '}') return fail('expected , or }');
    }
    pos++;
  }
  const rest = line.slice(pos).trim().split(/\s+/);
  const valueText = rest[0];
  if (valueText === undefined || valueText === '') return fail('missing value');
  // Prometheus parses values with Go's ParseFloat: NaN and Inf in any case (prom-client writes "Nan").
  const lower = valueText.toLowerCase();
  const special: Readonly<Record<string, number>> = {
    nan: Number.NaN,
    inf: Number.POSITIVE_INFINITY,
    '+inf': Number.POSITIVE_INFINITY,
    '-inf': Number.NEGATIVE_INFINITY,
  };
  const value = special[lower] ?? Number(valueText);
  if (Number.isNaN(value) && lower !== 'nan') return fail('bad value');
  return { name, labels, value };
}
