// L7 in the sidecar (issue 15 §1, the "before" state; docs/architecture.md "Sidecar mode"): `ferry up -f`
// with a namespace in sidecar mode and the HTTPRoutes `ferry migrate convert` writes from a weighted
// VirtualService with retries. The caller's sidecar applies them client-side, as an Istio sidecar applies a
// VirtualService: the 50/30/20 split holds within ±5 points over 600 requests (HTTP/1.1 and h2c), retries
// hide a backend's first-try 503s from the client (the same requests to a Service without a route see
// them), a slow first try is cut by the per-try timeout and retried, and every request still arrives over
// HBONE with the caller's SPIFFE id (the server sidecar's access log). Torn down and checked clean.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { privilegedTest } from '../../testkit/privileged.ts';
import { FerryCli } from '../helpers/cluster-cli.ts';
import { header, jsonLines, type LoadSummary, type Reply } from '../helpers/waypoint-e2e.ts';

const MANIFESTS = fileURLToPath(new URL('./fixtures/sidecar-l7', import.meta.url));
const cli = new FerryCli('sidecar-l7');
const CLIENT_ID = 'spiffe://cluster.local/ns/bk/sa/client';
const SPLIT = { 'reviews-v1': 50, 'reviews-v2': 30, 'reviews-v3': 20 } as const;

privilegedTest('sidecar L7: weighted routes, retries and timeouts applied by the calling sidecar', async (t) => {
  t.after(() => cli.remove());
  const { cluster } = await cli.up(t, 'l7', MANIFESTS, 2);
  const logDir = join(cli.stateRoot, cluster, 'logs');
  const curl = (args: readonly string[]) =>
    cli.run(['exec', '--cluster', cluster, 'bk/client', '--', 'curl', '-s', ...args]);
  const load = async (url: string, args: readonly string[]): Promise<LoadSummary> => {
    const r = await curl([url, '--summary', ...args]);
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    assert.ok(line !== undefined, `load ${url}: no summary\n${r.stderr}`);
    return JSON.parse(line) as LoadSummary;
  };
  const request = async (url: string, headers: readonly string[]): Promise<Reply> => {
    const r = await curl([url, '--json', ...headers.flatMap((h) => ['-H', h])]);
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    assert.ok(line !== undefined, `curl ${url}: no output\n${r.stderr}`);
    const p = JSON.parse(line) as { status?: number; headers?: Reply['headers']; body?: string };
    assert.ok(p.status !== undefined, `curl ${url}: ${line}`);
    const body = p.body ?? '';
    return { status: p.status, headers: p.headers ?? {}, body, echo: body.startsWith('{') ? JSON.parse(body) : null };
  };
  /** A JSON line of a pod's sidecar log (written asynchronously: polled, bounded). */
  const logLine = async (pod: string, match: (l: Record<string, unknown>) => boolean) => {
    for (let waitMs = 20; waitMs < 30_000; waitMs *= 2) {
      const text = (() => {
        try {
          return readFileSync(join(logDir, `bk_${pod}_istio-proxy.log`), 'utf8');
        } catch {
          return '';
        }
      })();
      const found = jsonLines(text).find(match);
      if (found !== undefined) return found;
      await delay(Math.min(waitMs, 1_000));
    }
    assert.fail(`no matching line in ${pod}'s sidecar log`);
  };
  const requestLine = (id: string) => logLine('client', (l) => l.msg === 'request' && l.request_id === id);

  const assertSplit = (s: LoadSummary, total: number): void => {
    assert.equal(s.failures, 0, JSON.stringify(s.errors));
    assert.deepEqual(s.byStatus, { '200': total });
    for (const [pod, weight] of Object.entries(SPLIT)) {
      const share = (100 * (s.byPod[pod] ?? 0)) / total;
      t.diagnostic(`${pod}: ${share.toFixed(1)} % (weight ${weight})`);
      assert.ok(Math.abs(share - weight) <= 5, `${pod}: ${share.toFixed(1)} % is not within ±5 of ${weight}`);
    }
  };

  await t.test('50/30/20 over 600 HTTP/1.1 keep-alive requests to http://reviews.bk:9080', async () => {
    assertSplit(await load('http://reviews.bk:9080/', ['--count', '600', '--concurrency', '4']), 600);
  });

  await t.test('50/30/20 over 600 HTTP/2 (h2c prior knowledge) requests', async () => {
    assertSplit(await load('http://reviews.bk:9080/', ['--h2c', '--count', '600', '--concurrency', '4']), 600);
  });

  await t.test('retries make the first-try 503s invisible; without a route the client sees them', async () => {
    const flaky = ['-H', 'x-fail-times: 1', '-H', 'x-fail-status: 503'];
    const routed = await load('http://ratings.bk:9080/', [
      ...['--count', '200', '--concurrency', '4', '--request-id-prefix', 'flaky'],
      ...flaky,
    ]);
    assert.equal(routed.failures, 0, JSON.stringify(routed.errors));
    assert.deepEqual(routed.byStatus, { '200': 200 });
    const line = await requestLine('flaky-7');
    assert.equal(line.retries, 1, 'the sidecar retried once');
    assert.equal(line.route, 'bk/ratings');
    const direct = await load('http://ratings-direct.bk:9080/', [
      ...['--count', '20', '--request-id-prefix', 'direct'],
      ...flaky,
    ]);
    assert.deepEqual(direct.byStatus, { '503': 20 }, 'the same failures, unretried, reach the client');
  });

  await t.test('a slow first try is cut by the per-try timeout (300 ms) and retried', async () => {
    const r = await request('http://ratings.bk:9080/', [
      'x-request-id: slow-once',
      'x-fail-times: 1',
      'x-fail-delay: 2s',
    ]);
    assert.equal(r.status, 200);
    assert.equal(header(r.echo?.headers ?? {}, 'x-route'), 'ratings', 'the route filter ran in the sidecar');
    assert.equal((await requestLine('slow-once')).retries, 1);
    const all = await request('http://ratings.bk:9080/?delay=5s', ['x-request-id: slow-always']);
    assert.equal(all.status, 504, 'every try timed out');
  });

  await t.test('the server sidecar sees the caller’s SPIFFE id (HBONE, mTLS) for routed requests', async () => {
    for (const pod of ['reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings']) {
      const line = await logLine(pod, (l) => l.scope === 'access' && l.direction === 'inbound');
      assert.equal(line['src.identity'], CLIENT_ID, `${pod}: inbound from the client's identity`);
    }
    const line = await requestLine('flaky-7');
    assert.equal(line.source_principal, CLIENT_ID);
    assert.equal(line.upstream_pod, 'bk/ratings');
  });
});
