// Waypoints in the local cluster, end to end (issue 5): client pod → ztunnel → waypoint → ztunnel → pod.
// A 70/30 canary within ±5 points over 500 requests; 70/30 → 0/100 applied under load with no failed
// request and in effect within a second; retries on 503 and on resets, per-try and request timeouts; an
// L7 DENY → 403 named in the waypoint's access log; an invalid route reported in `ferry status` while the
// others keep working; Istio's request metrics on the waypoint.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { privilegedTest } from '../helpers/privileged.ts';
import { FerryCli, vipOf } from './cluster-cli.ts';

const EXAMPLE = fileURLToPath(new URL('../../examples/waypoint', import.meta.url));
const cli = new FerryCli('waypoint');
test.after(() => cli.remove());

interface LoadResult {
  readonly statuses: Map<number, number>;
  readonly pods: Map<string, number>;
  readonly errors: number;
}

function parseLoad(stdout: string, stderr: string): LoadResult {
  const statuses = new Map<number, number>();
  const pods = new Map<string, number>();
  for (const m of stdout.matchAll(/^HTTP (\d+)$/gm)) statuses.set(Number(m[1]), (statuses.get(Number(m[1])) ?? 0) + 1);
  for (const m of stdout.matchAll(/"pod":"([a-z0-9-]+)"/g)) pods.set(m[1] ?? '', (pods.get(m[1] ?? '') ?? 0) + 1);
  return { statuses, pods, errors: (stderr.match(/^curl: \(7\)/gm) ?? []).length };
}

privilegedTest(
  'waypoint: canary split, live weight change, retries, timeouts, L7 deny, bad route, metrics',
  async (t) => {
    const { cluster } = await cli.up(t, 'wp', EXAMPLE);
    const status = await cli.status(cluster);
    const echo = vipOf(status, 'shop', 'echo');
    const echoV1 = vipOf(status, 'shop', 'echo-v1');
    const echoV2 = vipOf(status, 'shop', 'echo-v2');
    const exec = (...args: string[]) =>
      cli.run(['exec', '--cluster', cluster, 'shop/client-0', '--', 'curl', '-s', ...args]);

    await t.test('70/30 over 500 requests: each share within ±5 points', async () => {
      const r = await exec(`http://${echo}/`, '--count', '500');
      const load = parseLoad(r.stdout, r.stderr);
      assert.equal(load.statuses.get(200), 500, r.stderr);
      const v1 = (load.pods.get('echo-v1-0') ?? 0) / 500;
      t.diagnostic(`echo-v1 share ${v1}`);
      assert.ok(Math.abs(v1 - 0.7) <= 0.05, `echo-v1 share ${v1}`);
    });

    await t.test('70/30 → 0/100 under load: no failed request, in effect within 1 s', async () => {
      const load = cli.start(t, [
        'exec',
        '--cluster',
        cluster,
        'shop/client-0',
        '--',
        'curl',
        '-s',
        `http://${echo}/`,
        '--count',
        '400',
        '--interval',
        '10',
      ]);
      await load.firstOutput;
      const applied = await cli.run(['apply', '--cluster', cluster, '-f', join(EXAMPLE, 'variants', 'all-to-v2.yaml')]);
      assert.equal(applied.code, 0, applied.stdout + applied.stderr);
      const appliedAt = Date.now();
      // Within a second, every request goes to v2.
      let firstAllV2 = Number.POSITIVE_INFINITY;
      while (Date.now() - appliedAt < 5_000) {
        const probe = parseLoad((await exec(`http://${echo}/`, '--count', '20')).stdout, '');
        if ((probe.pods.get('echo-v2-0') ?? 0) === 20) {
          firstAllV2 = Date.now() - appliedAt;
          break;
        }
      }
      t.diagnostic(`all requests on echo-v2 ${firstAllV2} ms after ferry apply returned`);
      assert.ok(firstAllV2 <= 1_000, `took ${firstAllV2} ms`);
      const run = await load.done;
      const r = parseLoad(run.stdout, run.stderr);
      assert.equal(r.errors, 0, run.stderr);
      assert.deepEqual([...r.statuses.keys()], [200], `statuses ${JSON.stringify([...r.statuses])}`);
      const after = parseLoad((await exec(`http://${echo}/`, '--count', '50')).stdout, '');
      assert.equal(after.pods.get('echo-v1-0'), undefined, 'weight 0 receives nothing');
    });

    await t.test(
      'retries: N ≤ attempts succeeds, N > attempts returns the backend failure, codes filter, resets, timeouts',
      async () => {
        const applied = await cli.run(['apply', '--cluster', cluster, '-f', join(EXAMPLE, 'variants', 'retries.yaml')]);
        assert.equal(applied.code, 0, applied.stdout + applied.stderr);
        const status = async (id: string, headers: string[], path = '/') => {
          const r = await exec(
            `http://${echoV1}${path}`,
            '-H',
            `x-request-id: ${id}`,
            ...headers.flatMap((h) => ['-H', h]),
          );
          return Number(/^HTTP (\d+)$/m.exec(r.stdout)?.[1] ?? 0);
        };
        assert.equal(await status('r1', ['x-fail-times: 2', 'x-fail-status: 503']), 200, '2 failures, 2 retries');
        assert.equal(
          await status('r2', ['x-fail-times: 3', 'x-fail-status: 503']),
          503,
          '3 failures, 2 retries: the backend 503',
        );
        assert.equal(await status('r3', ['x-fail-times: 1', 'x-fail-status: 500']), 500, '500 is not in codes');
        assert.equal(await status('r4', ['x-fail-times: 2', 'x-fail-reset: true']), 200, 'resets are retried');
        assert.equal(await status('r5', [], '/?delay=5s'), 504, 'per-try timeouts, then the request timeout');
        assert.equal(await status('r6', [], '/slow-cap?delay=2s'), 504, 'the request timeout caps the exchange');
      },
    );

    await t.test('L7 DENY: 403, and the waypoint access log names the policy', async () => {
      const r = await exec(`http://${echoV2}/`, '-X', 'DELETE');
      assert.match(r.stdout, /^HTTP 403$/m);
      const log = await readFile(join(cli.stateRoot, cluster, 'logs', 'waypoint-shop-waypoint.log'), 'utf8');
      const line = log.split('\n').find((l) => l.includes('"response_code":403'));
      assert.ok(line !== undefined, 'a 403 access-log line');
      assert.equal(JSON.parse(line).policy, 'shop/no-delete');
    });

    await t.test('an invalid route is reported by ferry status; other routes keep working', async () => {
      const applied = await cli.run(['apply', '--cluster', cluster, '-f', join(EXAMPLE, 'variants', 'bad-route.yaml')]);
      assert.equal(applied.code, 0, applied.stdout + applied.stderr);
      const s = await cli.run(['status', '--cluster', cluster]);
      const controllerLog = await readFile(join(cli.stateRoot, cluster, 'logs', 'controller.log'), 'utf8');
      assert.match(controllerLog, /FERRY_ROUTE_INVALID.*backreferences/, 'the controller logs the bad regex');
      assert.match(s.stdout, /HTTPRoute shop\/broken .*Accepted=False \(UnsupportedValue/);
      assert.match(s.stdout, /HTTPRoute shop\/echo-split .*Accepted=True/);
      const r = parseLoad((await exec(`http://${echo}/`, '--count', '5')).stdout, '');
      assert.equal(r.statuses.get(200), 5);
    });

    await t.test("the waypoint's metrics: istio_requests_total with reporter=waypoint", async () => {
      const waypoints = JSON.parse(await readFile(join(cli.stateRoot, cluster, 'waypoints.json'), 'utf8')) as {
        metrics: string;
      }[];
      const text = await (await fetch(`http://${waypoints[0]?.metrics}/metrics`)).text();
      assert.match(
        text,
        /istio_requests_total\{reporter="waypoint",[^}]*source_principal="spiffe:\/\/cluster\.local\/ns\/shop\/sa\/client"[^}]*destination_service="echo\.shop\.svc\.cluster\.local"[^}]*response_code="200"[^}]*\} \d+/,
      );
      assert.match(text, /istio_request_duration_milliseconds_bucket\{le="[^"]+",reporter="waypoint"/);
    });
  },
);
