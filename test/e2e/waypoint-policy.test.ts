// Waypoint policy, robustness and observability in the local cluster (issue 5): L7 AuthorizationPolicy
// (DENY on the waypoint Gateway, ALLOW on a Service by principal and method) → 403 with the policy in the
// access log; invalid HTTPRoutes (bad regex, unknown filter) reported by `ferry status` while other routes
// keep working; malformed HTTP/1.1 and HTTP/2 through the mesh → 400 / GOAWAY and the waypoint keeps
// serving; Istio's request metrics with reporter="waypoint".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { privilegedTest } from '../../testkit/privileged.ts';
import { FerryCli } from '../helpers/cluster-cli.ts';
import { until, variant, WaypointCluster } from '../helpers/waypoint-e2e.ts';

const cli = new FerryCli('wp-policy');
test.after(() => cli.remove());
const RAW_CLIENT = fileURLToPath(new URL('../helpers/waypoint-raw-client.ts', import.meta.url));

privilegedTest('waypoint policy: L7 authz, invalid routes, malformed HTTP, metrics', async (t) => {
  const c = await WaypointCluster.up(cli, t, 'wpp');

  await t.test('DENY DELETE on the waypoint: 403, the access log names the policy', async () => {
    const denied = await c.request(c.url('echo', '/'), ['-X', 'DELETE', '-H', 'x-request-id: deny-1']);
    assert.equal(denied.status, 403);
    assert.equal(denied.echo, null, 'no backend saw it');
    const { value } = await until(async () => (await c.accessLog()).find((l) => l.request_id === 'deny-1'), {
      limitMs: 5_000,
      what: 'the 403 access-log line',
    });
    assert.equal(value.response_code, 403);
    assert.equal(value.policy, 'shop/no-delete');
    assert.equal(value.response_flags, 'RBAC');
    assert.equal((await c.request(c.url('echo', '/'))).status, 200, 'GET is allowed');
  });

  await t.test('ALLOW on Service echo-v2: only GET, only from the client service account', async () => {
    await c.apply(variant('authz-allow.yaml'));
    await until(async () => ((await c.request(c.url('echo-v2'), [], 'intruder-0')).status === 403 ? true : undefined), {
      limitMs: 10_000,
      what: 'the ALLOW policy at the waypoint',
    });
    assert.equal((await c.request(c.url('echo-v2'))).status, 200, 'client GET');
    assert.equal((await c.request(c.url('echo-v2'), ['-X', 'POST', '-d', 'x'])).status, 403, 'client POST');
    assert.equal((await c.request(c.url('echo-v2'), [], 'intruder-0')).status, 403, 'intruder GET');
    assert.equal((await c.request(c.url('echo-v1'), [], 'intruder-0')).status, 200, 'other Services unaffected');
  });

  await t.test('invalid routes: ferry status says why, the controller logs it, other routes keep working', async () => {
    await c.apply(variant('bad-route.yaml'));
    await c.apply(variant('bad-filter.yaml'));
    const s = await c.statusText();
    assert.match(s, /HTTPRoute shop\/broken .*Accepted=False \(UnsupportedValue/);
    assert.match(s, /HTTPRoute shop\/broken-filter .*Accepted=False \(UnsupportedValue: .*ExtensionRef/);
    assert.match(s, /HTTPRoute shop\/echo-split .*Accepted=True/);
    assert.match(await c.log('controller.log'), /FERRY_ROUTE_INVALID.*backreferences/);
    const split = await c.load(c.url('echo'), ['--count', '50', '--concurrency', '2']);
    assert.deepEqual(split.byStatus, { '200': 50 });
    assert.equal((await c.request(c.url('web', '/'))).status, 200, 'web: its only route is invalid, pass-through');
  });

  const malformed: readonly { kind: string; expect: (r: { firstLine: string | null; goaway: boolean }) => void }[] = [
    { kind: 'oversized-headers', expect: (r) => assert.match(r.firstLine ?? '', /^HTTP\/1\.1 4(00|31) /) },
    { kind: 'bad-chunking', expect: (r) => assert.match(r.firstLine ?? '', /^HTTP\/1\.1 400 /) },
    { kind: 'bad-request-line', expect: (r) => assert.match(r.firstLine ?? '', /^HTTP\/1\.1 400 /) },
    { kind: 'content-length-and-chunked', expect: (r) => assert.match(r.firstLine ?? '', /^HTTP\/1\.1 400 /) },
    { kind: 'garbage', expect: (r) => assert.match(r.firstLine ?? '', /^(HTTP\/1\.1 400 .*)?$/) },
    { kind: 'h2-headers-on-stream-0', expect: (r) => assert.ok(r.goaway, 'GOAWAY') },
    { kind: 'h2-oversized-frame', expect: (r) => assert.ok(r.goaway, 'GOAWAY') },
  ];
  for (const m of malformed) {
    await t.test(`malformed input through the mesh (${m.kind}): refused, and the waypoint keeps serving`, async () => {
      const [ip, port] = c.url('echo').slice('http://'.length).replace(/\/$/, '').split(':');
      const r = await c.cli.run([
        ...['exec', '--cluster', c.name, 'shop/client-0', '--'],
        ...[process.execPath, RAW_CLIENT, ip ?? '', port ?? '80', m.kind],
      ]);
      const line = r.stdout.trim().split('\n').pop() ?? '';
      assert.ok(line.startsWith('{'), r.stderr);
      const result = JSON.parse(line) as { firstLine: string | null; goaway: boolean };
      t.diagnostic(`${m.kind}: ${line}`);
      m.expect(result);
      const after = await c.load(c.url('echo'), ['--count', '20', '--concurrency', '2']);
      assert.deepEqual(after.byStatus, { '200': 20 });
    });
  }

  await t.test('metrics: istio_requests_total and the duration histogram with reporter="waypoint"', async () => {
    const text = await c.metrics();
    assert.match(
      text,
      /istio_requests_total\{reporter="waypoint",[^}]*source_principal="spiffe:\/\/cluster\.local\/ns\/shop\/sa\/client"[^}]*destination_service="echo\.shop\.svc\.cluster\.local"[^}]*response_code="200"[^}]*\} \d+/,
    );
    assert.match(text, /istio_requests_total\{reporter="waypoint",[^}]*response_flags="RBAC"[^}]*response_code="403"/);
    assert.match(text, /istio_request_duration_milliseconds_bucket\{[^}]*reporter="waypoint"/);
    assert.match(text, /istio_request_bytes_(bucket|sum|count)\{[^}]*reporter="waypoint"/);
    assert.match(text, /istio_response_bytes_(bucket|sum|count)\{[^}]*reporter="waypoint"/);
  });
});
