// Ferry's Prometheus registry (src/runtime/prometheus.ts), read back with the strict test parser: what a
// scraper gets for counters, histograms, collectors and hostile label values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { registerProcessMetrics } from '../../../src/runtime/process-metrics.ts';
import { MetricsRegistry } from '../../../src/runtime/prometheus.ts';
import { parseMetrics } from '../../helpers/parse-metrics.ts';

test('a counter series keeps what was added to it, one series per label set', async () => {
  const r = new MetricsRegistry();
  const c = r.counter({ name: 'x_total', help: 'x', labelNames: ['a', 'b'] });
  const kept = c.series({ a: '1', b: '2' });
  kept.value += 3;
  c.inc({ a: '1', b: '2' }, 2);
  c.inc({ a: '9' });
  const m = parseMetrics(await r.metrics());
  assert.equal(m.types.get('x_total'), 'counter');
  assert.equal(m.sum('x_total', { a: '1', b: '2' }), 5);
  assert.deepEqual(m.query('x_total', { a: '9' })[0]?.labels, { a: '9', b: '' });
});

test('histogram buckets are cumulative, with +Inf, _sum and _count', async () => {
  const r = new MetricsRegistry();
  const h = r.histogram({ name: 'd_ms', help: 'd', labelNames: ['code'], buckets: [10, 1, 100] });
  const s = h.series({ code: '200' });
  for (const v of [0.5, 1, 5, 50, 500]) s.observe(v);
  const m = parseMetrics(await r.metrics());
  assert.equal(m.types.get('d_ms'), 'histogram');
  const bucket = (le: string) => m.sum('d_ms_bucket', { code: '200', le });
  assert.deepEqual([bucket('1'), bucket('10'), bucket('100'), bucket('+Inf')], [2, 3, 4, 5]);
  assert.equal(m.sum('d_ms_sum', { code: '200' }), 556.5);
  assert.equal(m.sum('d_ms_count', { code: '200' }), 5);
});

test('label values with quotes, backslashes and newlines survive the text format', async () => {
  const r = new MetricsRegistry();
  const value = 'a"b\\c\nd';
  r.gauge({ name: 'g', help: 'help with \\ and\nnewline', labelNames: ['v'] }).set({ v: value }, 1);
  const m = parseMetrics(await r.metrics());
  assert.equal(m.query('g')[0]?.labels.v, value);
});

test('collected families are read on every scrape and replace their previous values', async () => {
  const r = new MetricsRegistry();
  let n = 1;
  r.collected('counter', { name: 'bpf_total', help: 'b', labelNames: ['k'] }, () => [{ labels: { k: 'x' }, value: n }]);
  let flushed = 0;
  r.onScrape(() => flushed++);
  assert.equal(parseMetrics(await r.metrics()).sum('bpf_total'), 1);
  n = 7;
  assert.equal(parseMetrics(await r.metrics()).sum('bpf_total'), 7);
  assert.equal(flushed, 2);
});

test('a name registered twice is refused', () => {
  const r = new MetricsRegistry();
  r.counter({ name: 'dup', help: 'd' });
  assert.throws(() => r.gauge({ name: 'dup', help: 'd' }), /already registered/);
});

test('process metrics: CPU, memory, start time and the Node version, under prom-client names', async () => {
  const r = new MetricsRegistry();
  registerProcessMetrics(r);
  const m = parseMetrics(await r.metrics());
  assert.ok(m.sum('process_cpu_seconds_total') > 0);
  assert.ok(m.sum('process_resident_memory_bytes') > 1024 * 1024);
  assert.ok(m.sum('process_open_fds') > 0);
  assert.ok(Math.abs(m.sum('process_start_time_seconds') - Date.now() / 1000) < 24 * 3600);
  assert.equal(m.query('nodejs_version_info')[0]?.labels.version, process.version);
});
