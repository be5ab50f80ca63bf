// Waypoint routing end to end in the local cluster (issue 5), on Service `web` (variants/routing.yaml): a
// table of requests → the backend that answered, the status, the Location of redirects, the path, Host
// and headers the backend saw, and the response headers — precedence, header/query/method matching,
// header modifiers, redirects (well-known ports omitted), rewrites, 404 when no rule matches, 500 for no or
// missing backends; then mirror copies in the mirror pod's log, CORS, per-backend filters, pass-through
// for a Service without routes, and a WebSocket-style upgrade through the waypoint.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { privilegedTest } from '../../testkit/privileged.ts';
import { FerryCli } from '../helpers/cluster-cli.ts';
import { type EchoBody, header, jsonLines, until, variant, WaypointCluster } from '../helpers/waypoint-e2e.ts';

const cli = new FerryCli('wp-routing');
test.after(() => cli.remove());

interface Row {
  readonly name: string;
  readonly path: string;
  readonly args?: readonly string[];
  readonly status: number;
  /** The pod that answered (the echo's JSON). */
  readonly pod?: 'echo-v1-0' | 'echo-v2-0';
  readonly location?: string;
  /** Checks on what the backend saw. */
  readonly seen?: (echo: EchoBody) => void;
  readonly responseHeaders?: Readonly<Record<string, string | undefined>>;
}

const HOST = ['-H', 'host: web.shop'];

const TABLE: readonly Row[] = [
  { name: 'Exact beats a PathPrefix of the same value', path: '/exact', status: 200, pod: 'echo-v2-0' },
  { name: 'below the Exact path: the PathPrefix', path: '/exact/more', status: 200, pod: 'echo-v1-0' },
  { name: 'the longest PathPrefix wins', path: '/api/v2/items', status: 200, pod: 'echo-v2-0' },
  { name: 'the shorter prefix for the rest', path: '/api/items', status: 200, pod: 'echo-v1-0' },
  { name: 'prefixes match whole segments (/api/v2x)', path: '/api/v2x', status: 200, pod: 'echo-v1-0' },
  { name: 'prefixes match whole segments (/apiary): no rule, 404', path: '/apiary', status: 404 },
  { name: 'RegularExpression path', path: '/re/123', status: 200, pod: 'echo-v2-0' },
  { name: 'RegularExpression matches the whole path', path: '/re/12x', status: 404 },
  { name: 'no header: the rule without header matches', path: '/hdr', status: 200, pod: 'echo-v1-0' },
  {
    name: 'header Exact (name case-insensitive)',
    path: '/hdr',
    args: ['-H', 'x-version: v2'],
    status: 200,
    pod: 'echo-v2-0',
  },
  {
    name: 'header values are case-sensitive',
    path: '/hdr',
    args: ['-H', 'x-version: V2'],
    status: 200,
    pod: 'echo-v1-0',
  },
  { name: 'header RegularExpression', path: '/hdr', args: ['-H', 'x-user: admin-42'], status: 200, pod: 'echo-v2-0' },
  { name: 'query param match', path: '/q?version=v2', status: 200, pod: 'echo-v2-0' },
  { name: 'query param other value', path: '/q?version=v1', status: 200, pod: 'echo-v1-0' },
  { name: 'method match', path: '/m', args: ['-X', 'POST', '-d', 'x'], status: 200, pod: 'echo-v2-0' },
  { name: 'other methods', path: '/m', status: 200, pod: 'echo-v1-0' },
  { name: 'a tie: the older route wins', path: '/tie', status: 200, pod: 'echo-v1-0' },
  {
    name: 'RequestHeaderModifier set/add/remove, ResponseHeaderModifier set/remove',
    path: '/mod',
    args: ['-H', 'x-add: pre', '-H', 'x-remove: gone', '-H', 'x-set: original'],
    status: 200,
    pod: 'echo-v1-0',
    seen: (e) => {
      assert.equal(header(e.headers, 'x-set'), 'set-by-route');
      assert.equal(header(e.headers, 'x-add'), 'pre,added');
      assert.equal(header(e.headers, 'x-remove'), undefined);
    },
    responseHeaders: { 'x-resp': 'from-route', 'x-pod': undefined },
  },
  {
    name: 'redirect: hostname, ReplacePrefixMatch, 301, query kept, port 80 omitted',
    path: '/old/page?x=1',
    args: HOST,
    status: 301,
    location: 'http://new.example/new/page?x=1',
  },
  {
    name: 'redirect to https: 443 omitted',
    path: '/secure/a',
    args: HOST,
    status: 302,
    location: 'https://web.shop/secure/a',
  },
  {
    name: 'redirect with a port: kept',
    path: '/port/a',
    args: HOST,
    status: 308,
    location: 'http://web.shop:8443/port/a',
  },
  {
    name: 'URLRewrite ReplacePrefixMatch and hostname',
    path: '/rw/prefix/rest?k=v',
    args: HOST,
    status: 200,
    pod: 'echo-v1-0',
    seen: (e) => {
      assert.equal(e.url, '/v2/rest?k=v');
      assert.equal(e.host, 'rewritten.example');
    },
  },
  {
    name: 'URLRewrite ReplaceFullPath (Host unchanged)',
    path: '/rw/full/x/y',
    args: HOST,
    status: 200,
    pod: 'echo-v1-0',
    seen: (e) => {
      assert.equal(e.path, '/full');
      assert.equal(e.host, 'web.shop');
    },
  },
  { name: 'a rule without backendRefs: 500', path: '/none', status: 500 },
  { name: 'a backendRef to a missing Service: 500', path: '/missing', status: 500 },
];

privilegedTest('waypoint routing: matches, precedence, filters, redirects, rewrites, mirror, CORS', async (t) => {
  const c = await WaypointCluster.up(cli, t, 'wpm');
  await c.apply(variant('routing.yaml'));
  await until(async () => ((await c.request(c.url('web', '/exact'))).echo?.pod === 'echo-v2-0' ? true : undefined), {
    limitMs: 10_000,
    what: 'the routing table at the waypoint',
  });

  for (const row of TABLE) {
    await t.test(`${row.path}: ${row.name}`, async () => {
      const r = await c.request(c.url('web', row.path), row.args ?? []);
      assert.equal(r.status, row.status, r.body);
      if (row.pod !== undefined) assert.equal(r.echo?.pod, row.pod);
      if (row.location !== undefined) assert.equal(header(r.headers, 'location'), row.location);
      if (row.seen !== undefined) {
        assert.ok(r.echo !== null, 'an echo reply');
        row.seen(r.echo);
      }
      for (const [k, v] of Object.entries(row.responseHeaders ?? {})) assert.equal(header(r.headers, k), v, k);
    });
  }

  await t.test('the same table over HTTP/2 (h2c) inside the tunnel', async () => {
    for (const row of TABLE.filter((x) => x.args === undefined)) {
      const r = await c.request(c.url('web', row.path), ['--h2c']);
      assert.equal(r.status, row.status, `${row.path}: ${r.body}`);
      if (row.pod !== undefined) assert.equal(r.echo?.pod, row.pod, row.path);
    }
  });

  await t.test('the access log names route and rule', async () => {
    await c.request(c.url('web', '/exact'), ['-H', 'x-request-id: named-1']);
    const { value } = await until(async () => (await c.accessLog()).find((l) => l.request_id === 'named-1'), {
      limitMs: 5_000,
      what: 'the access-log line',
    });
    assert.equal(value.route, 'shop/web-main');
    assert.equal(value.rule, 'exact');
    assert.equal(value.upstream_pod, 'shop/echo-v2-0');
  });

  await t.test('RequestMirror: the mirror pod gets a copy of each request (Host -shadow)', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await c.request(c.url('web', '/mirror/x'), ['-H', `x-request-id: mirror-${i}`]);
      assert.equal(r.status, 200);
      assert.equal(r.echo?.pod, 'echo-v1-0', 'the response is the primary backend’s');
    }
    const { value: copies } = await until(
      async () => {
        const lines = jsonLines(await c.log('shop_mirror-0_echo.log')).filter((l) =>
          String(l.requestId).startsWith('mirror-'),
        );
        return lines.length >= 5 ? lines : undefined;
      },
      { limitMs: 5_000, what: 'five mirrored copies in the mirror pod log' },
    );
    assert.equal(copies.length, 5);
    for (const l of copies) {
      assert.equal(l.path, '/mirror/x');
      assert.match(String(l.host), /-shadow$/);
    }
  });

  await t.test('CORS: preflight allowed / refused, and CORS headers on the actual response', async () => {
    const origin = ['-H', 'origin: https://shop.example'];
    const pre = await c.request(c.url('web', '/cors'), [
      ...['-X', 'OPTIONS', ...origin, '-H', 'access-control-request-method: PUT'],
      ...['-H', 'access-control-request-headers: x-token'],
    ]);
    assert.ok(pre.status === 200 || pre.status === 204, `preflight ${pre.status}`);
    assert.equal(header(pre.headers, 'access-control-allow-origin'), 'https://shop.example');
    assert.match(header(pre.headers, 'access-control-allow-methods') ?? '', /PUT/);
    assert.match(header(pre.headers, 'access-control-allow-headers') ?? '', /x-token/i);
    assert.equal(header(pre.headers, 'access-control-max-age'), '60');
    assert.equal(pre.echo, null, 'a preflight is answered by the waypoint');
    const refused = await c.request(c.url('web', '/cors'), [
      ...['-X', 'OPTIONS', '-H', 'origin: https://evil.example', '-H', 'access-control-request-method: PUT'],
    ]);
    assert.equal(header(refused.headers, 'access-control-allow-origin'), undefined);
    const actual = await c.request(c.url('web', '/cors'), origin);
    assert.equal(actual.status, 200);
    assert.equal(actual.echo?.pod, 'echo-v1-0');
    assert.equal(header(actual.headers, 'access-control-allow-origin'), 'https://shop.example');
  });

  await t.test('per-backendRef filters run only for the backend chosen', async () => {
    const r = await c.curl([c.url('web', '/pb'), '--json', '--count', '40']);
    const replies = jsonLines(r.stdout).map((l) => JSON.parse(String(l.body)) as EchoBody);
    assert.equal(replies.length, 40);
    const pods = new Set(replies.map((e) => e.pod));
    assert.deepEqual([...pods].sort(), ['echo-v1-0', 'echo-v2-0'], 'equal weights: both backends');
    for (const e of replies) assert.equal(`${header(e.headers, 'x-backend')}-0`, e.pod);
  });

  await t.test('a Service without routes passes through the waypoint unchanged', async () => {
    const r = await c.request(c.url('plain', '/anything?x=1'), ['-H', 'x-request-id: plain-1']);
    assert.equal(r.status, 200);
    assert.equal(r.echo?.pod, 'echo-v2-0');
    assert.equal(r.echo?.url, '/anything?x=1');
    const { value } = await until(async () => (await c.accessLog()).find((l) => l.request_id === 'plain-1'), {
      limitMs: 5_000,
      what: 'the pass-through in the waypoint access log',
    });
    assert.equal(value.route, null);
    assert.equal(value.destination_service, 'plain.shop.svc.cluster.local');
  });

  await t.test('ferry status: every route Accepted; web-filters ResolvedRefs=False (BackendNotFound)', async () => {
    const s = await c.statusText();
    assert.match(s, /HTTPRoute shop\/web-main .*Accepted=True {2}ResolvedRefs=True/);
    assert.match(s, /HTTPRoute shop\/web-filters .*Accepted=True.*ResolvedRefs=False \(BackendNotFound/);
    assert.match(s, /HTTPRoute shop\/web-tie-a .*Accepted=True/);
  });

  await t.test('WebSocket-style upgrade passes through the waypoint', async () => {
    const r = await c.curl([c.url('web', '/ws'), '--ws', '-d', 'hello over the mesh']);
    assert.equal(r.stdout, 'HTTP 101\nhello over the mesh\n', r.stderr);
  });
});
