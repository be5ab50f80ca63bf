// Waypoint canary in the local cluster (issue 5), client pod → ztunnel → waypoint → ztunnel → echo pods:
// 70/30 over 500 requests to `http://echo/` (cluster DNS) within ±5 points (HTTP/1.1 keep-alive, and h2c
// to the VIP), named route and rule in the access log, then 70/30 → 0/100 applied while load runs: no
// request fails, the waypoint's last request to v1 (its access log) is within a second of `ferry apply`
// returning, and weight 0 receives nothing after.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { privilegedTest } from '../../testkit/privileged.ts';
import { FerryCli, killSupervisor } from '../helpers/cluster-cli.ts';
import { EXAMPLE, type LoadSummary, until, variant, WaypointCluster } from '../helpers/waypoint-e2e.ts';

const cli = new FerryCli('wp-canary');
test.after(() => cli.remove());

function share(s: LoadSummary, pod: string): number {
  return (s.byPod[pod] ?? 0) / s.total;
}

privilegedTest('waypoint canary: 70/30 split, weight 0, live 70/30 → 0/100 under load', async (t) => {
  const c = await WaypointCluster.up(cli, t, 'wpc', []);

  await t.test('70/30 over 500 requests: each share within ±5 points, all through the named rule', async () => {
    // By name, as the README runs it: cluster DNS gives the VIP, and the waypoint routes by the VIP.
    const s = await c.load('http://echo/', ['--count', '500', '--concurrency', '4', '--request-id-prefix', 'split']);
    assert.equal(s.failures, 0, JSON.stringify(s.errors));
    assert.deepEqual(s.byStatus, { '200': 500 });
    const v1 = share(s, 'echo-v1-0');
    const v2 = share(s, 'echo-v2-0');
    t.diagnostic(`echo-v1 ${v1}, echo-v2 ${v2}, p50 ${s.latencyMs.p50} ms, p99 ${s.latencyMs.p99} ms`);
    assert.ok(Math.abs(v1 - 0.7) <= 0.05, `echo-v1 share ${v1}`);
    assert.ok(Math.abs(v2 - 0.3) <= 0.05, `echo-v2 share ${v2}`);
    const { value: lines } = await until(
      async () => {
        const l = (await c.accessLog()).filter((x) => String(x.request_id).startsWith('split-'));
        return l.length === 500 ? l : undefined;
      },
      { limitMs: 5_000, what: '500 access-log lines' },
    );
    assert.ok(lines.every((l) => l.route === 'shop/echo-split' && l.rule === 'canary' && l.response_code === 200));
    const upstreams = new Set(lines.map((l) => l.upstream_pod));
    assert.deepEqual([...upstreams].sort(), ['shop/echo-v1-0', 'shop/echo-v2-0']);
  });

  await t.test('70/30 with HTTP/2 (h2c prior knowledge) inside the tunnel', async () => {
    // 1000 requests: ±5 points is then 3.4 standard deviations (2.4 at 500), so this one rarely flakes.
    const s = await c.load(c.url('echo'), ['--h2c', '--count', '1000', '--concurrency', '8']);
    assert.equal(s.failures, 0, JSON.stringify(s.errors));
    assert.deepEqual(s.byStatus, { '200': 1000 });
    const v1 = share(s, 'echo-v1-0');
    t.diagnostic(`h2c: echo-v1 ${v1}`);
    assert.ok(Math.abs(v1 - 0.7) <= 0.05, `echo-v1 share ${v1}`);
  });

  await t.test('70/30 → 0/100 under load: no failed request, v1 gets nothing 1 s after ferry apply', async () => {
    const load = cli.start(t, [
      'exec',
      '--cluster',
      c.name,
      'shop/client-0',
      '--',
      'curl',
      '-s',
      c.url('echo'),
      ...['--summary', '--count', '1200', '--concurrency', '2', '--interval', '5', '--request-id-prefix', 'live'],
    ]);
    // The load is running once the waypoint has logged some of it.
    await until(
      async () => ((await c.accessLog()).some((l) => String(l.request_id).startsWith('live-')) ? true : undefined),
      { limitMs: 10_000, what: 'the load through the waypoint' },
    );
    const applyStarted = Date.now();
    await c.apply(variant('all-to-v2.yaml'));
    const appliedAt = Date.now();
    const run = await load.done;
    // When did the waypoint send its last request of this load to echo-v1 (its access-log clock is ours)?
    const { value: live } = await until(
      async () => {
        const l = (await c.accessLog()).filter((x) => String(x.request_id).startsWith('live-'));
        return l.length === 1200 ? l : undefined;
      },
      { limitMs: 5_000, what: '1200 access-log lines of the load' },
    );
    const at = (l: Record<string, unknown>) => Date.parse(String(l.time));
    const lastV1 = Math.max(...live.filter((l) => l.upstream_pod === 'shop/echo-v1-0').map(at));
    const afterOnV2 = live.filter((l) => at(l) > lastV1);
    t.diagnostic(
      `ferry apply took ${appliedAt - applyStarted} ms; last request to echo-v1 ${lastV1 - appliedAt} ms after it returned; ${afterOnV2.length} requests after that, all on echo-v2`,
    );
    assert.ok(lastV1 - appliedAt <= 1_000, `echo-v1 still got requests ${lastV1 - appliedAt} ms after ferry apply`);
    assert.ok(afterOnV2.length >= 100, 'the load went on after the change');
    assert.ok(afterOnV2.every((l) => l.upstream_pod === 'shop/echo-v2-0'));
    const summary = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as LoadSummary;
    t.diagnostic(`during the change: ${JSON.stringify(summary.byPod)} ${JSON.stringify(summary.byStatus)}`);
    assert.equal(summary.total, 1200);
    assert.equal(summary.failures, 0, JSON.stringify(summary.errors));
    assert.deepEqual(summary.byStatus, { '200': 1200 });
    assert.ok((summary.byPod['echo-v1-0'] ?? 0) > 0, 'the load started before the change');
  });

  await t.test('weight 0 receives nothing', async () => {
    const s = await c.load(c.url('echo'), ['--count', '300', '--concurrency', '4']);
    assert.deepEqual(s.byStatus, { '200': 300 });
    assert.deepEqual(s.byPod, { 'echo-v2-0': 300 });
  });

  await t.test(
    'waypoint killed without a supervisor: requests fail closed (never bypass it); ferry up restarts it and traffic is back',
    async () => {
      await killSupervisor(c.name); // else it restarts the waypoint at once (supervision.test.ts)
      const w = await c.waypoint();
      process.kill(w.pid, 'SIGKILL');
      const dead = await c.curl([c.url('echo'), '-m', '2']);
      assert.doesNotMatch(dead.stdout, /^HTTP 200/m, 'no route around a dead waypoint');
      const up = await c.cli.run(['up', '-f', EXAMPLE, '--cluster', c.name]);
      assert.equal(up.code, 0, up.stdout + up.stderr);
      assert.match(up.stdout, /restarted waypoint\(s\) that were not running: waypoint-shop-waypoint/);
      assert.match(up.stdout, /the supervisor was not running: started it/);
      const { value: back } = await until(
        async () => {
          const r = await c.curl([c.url('echo'), '-m', '2']);
          return /^HTTP 200/m.test(r.stdout) ? r.stdout : undefined;
        },
        { limitMs: 10_000, what: 'traffic through the restarted waypoint' },
      );
      assert.match(back, /"pod":"echo-v2-0"/);
    },
  );
});
