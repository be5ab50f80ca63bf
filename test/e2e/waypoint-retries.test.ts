// Waypoint retries and timeouts in the local cluster (issue 5) with the echo app's per-request-id failure
// injection: a backend that fails N times with 503 succeeds when N ≤ attempts and returns its own 503
// otherwise; a code not in `codes` is not retried; TCP resets and per-try timeouts are retried; the
// request timeout caps everything with 504. The waypoint's access log counts the retries it made.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { privilegedTest } from '../../testkit/privileged.ts';
import { FerryCli } from '../helpers/cluster-cli.ts';
import { header, type Reply, until, variant, WaypointCluster } from '../helpers/waypoint-e2e.ts';

const cli = new FerryCli('wp-retries');
test.after(() => cli.remove());

privilegedTest('waypoint retries and timeouts (route echo-v1-retries: 2 retries on 503, 300 ms per try)', async (t) => {
  const c = await WaypointCluster.up(cli, t, 'wpr', []);
  await c.apply(variant('retries.yaml'));
  await until(
    async () =>
      header((await c.request(c.url('echo-v1'))).echo?.headers ?? {}, 'x-route') === 'echo-v1-retries'
        ? true
        : undefined,
    { limitMs: 10_000, what: 'the retry route at the waypoint' },
  );
  const send = (id: string, headers: readonly string[], path = '/'): Promise<Reply> =>
    c.request(c.url('echo-v1', path), ['-H', `x-request-id: ${id}`, ...headers.flatMap((h) => ['-H', h])]);
  const retriesOf = async (id: string): Promise<number> => {
    const { value } = await until(async () => (await c.accessLog()).find((l) => l.request_id === id), {
      limitMs: 5_000,
      what: `access-log line of ${id}`,
    });
    return Number(value.retries);
  };

  await t.test('503 twice with 2 retries: 200 after 2 retries', async () => {
    const r = await send('r-ok', ['x-fail-times: 2', 'x-fail-status: 503']);
    assert.equal(r.status, 200);
    assert.equal(r.echo?.pod, 'echo-v1-0');
    assert.equal(await retriesOf('r-ok'), 2);
  });

  await t.test("503 three times with 2 retries: the backend's own 503", async () => {
    const r = await send('r-exhausted', ['x-fail-times: 3', 'x-fail-status: 503']);
    assert.equal(r.status, 503);
    assert.equal(header(r.headers, 'x-pod'), 'echo-v1-0', 'the response is the backend’s, not the waypoint’s');
    assert.equal(await retriesOf('r-exhausted'), 2);
  });

  await t.test('500 is not in codes: not retried', async () => {
    const r = await send('r-500', ['x-fail-times: 1', 'x-fail-status: 500']);
    assert.equal(r.status, 500);
    assert.equal(await retriesOf('r-500'), 0);
  });

  await t.test('TCP resets are retried; too many give 503 from the waypoint', async () => {
    const ok = await send('r-reset', ['x-fail-times: 2', 'x-fail-reset: 1']);
    assert.equal(ok.status, 200);
    assert.equal(await retriesOf('r-reset'), 2);
    const failed = await send('r-reset-3', ['x-fail-times: 3', 'x-fail-reset: 1']);
    assert.equal(failed.status, 503);
    assert.equal(header(failed.headers, 'x-pod'), undefined, 'no backend answered');
  });

  await t.test('a per-try timeout (slow first try) is retried', async () => {
    const r = await send('r-slow', ['x-fail-times: 1', 'x-fail-delay: 2s']);
    assert.equal(r.status, 200);
    assert.equal(await retriesOf('r-slow'), 1);
  });

  await t.test('every try slow: 504 (per-try timeouts, then the retries run out)', async () => {
    const r = await send('r-slow-all', [], '/?delay=5s');
    assert.equal(r.status, 504);
  });

  await t.test('the request timeout caps the exchange: 504', async () => {
    const r = await send('r-cap', [], '/slow-cap?delay=2s');
    assert.equal(r.status, 504);
    const line = (await c.accessLog()).find((l) => l.request_id === 'r-cap');
    assert.equal(line?.rule, 'capped');
  });

  await t.test('under load: 200 requests each failing once are all retried to 200', async () => {
    const s = await c.load(c.url('echo-v1'), [
      ...['--count', '200', '--concurrency', '4', '--request-id-prefix', 'load-retry'],
      ...['-H', 'x-fail-times: 1', '-H', 'x-fail-status: 503'],
    ]);
    assert.equal(s.failures, 0, JSON.stringify(s.errors));
    assert.deepEqual(s.byStatus, { '200': 200 });
  });
});
