// The test curl's load mode, --json, --h2c and --ws against the echo app over real loopback sockets: the
// summary counts statuses, pods (x-pod) and failures; request ids are numbered; keep-alive reuses
// connections; the echo reports Host, the raw URL and x-pod; an upgrade is echoed through its tunnel.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { type CurlOptions, parseCurlArgs, runCurl } from '../../../../src/cli/testapp/curl.ts';
import { type LoadSample, percentile, summarize } from '../../../../src/cli/testapp/curl-load.ts';
import { startHttpEcho } from '../../../../src/cli/testapp/http-echo.ts';

function opts(argv: string[]): CurlOptions {
  const o = parseCurlArgs(argv);
  assert.ok(!('usage' in o), JSON.stringify(o));
  return o;
}

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCurl(
    opts(argv),
    (x) => {
      out += x;
    },
    (x) => {
      err += x;
    },
  );
  return { code, out, err };
}

async function echo(t: { after: (fn: () => PromiseLike<void>) => void }, podName = 'echo-a') {
  const lines: Record<string, unknown>[] = [];
  const app = await startHttpEcho({ port: 0, host: '127.0.0.1', podName, log: (l) => lines.push(l) });
  t.after(() => app[Symbol.asyncDispose]());
  return { base: `http://127.0.0.1:${app.port}`, app, lines };
}

test('summarize: statuses, pods from x-pod, failures by code, nearest-rank percentiles', () => {
  const ok = (status: number, pod: string | null, latencyMs: number): LoadSample => ({
    result: { kind: 'response', status, headers: pod === null ? {} : { 'x-pod': pod }, body: '' },
    latencyMs,
  });
  const samples: LoadSample[] = [
    ok(200, 'v1', 1),
    ok(200, 'v1', 2),
    ok(200, 'v2', 3),
    ok(503, 'v2', 4),
    ok(404, null, 5),
    { result: { kind: 'error', code: 'ECONNRESET', message: 'x' }, latencyMs: 99 },
  ];
  const s = summarize(samples);
  assert.equal(s.total, 6);
  assert.deepEqual(s.byStatus, { '200': 3, '503': 1, '404': 1 });
  assert.deepEqual(s.byPod, { v1: 2, v2: 2 });
  assert.equal(s.failures, 1);
  assert.deepEqual(s.errors, { ECONNRESET: 1 });
  assert.deepEqual(s.latencyMs, { p50: 3, p90: 5, p99: 5, max: 5 }, 'failed requests have no latency');
  assert.equal(percentile([], 0.5), 0);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), 9);
  assert.equal(percentile([7], 0.99), 7);
  assert.deepEqual(summarize([]).latencyMs, { p50: 0, p90: 0, p99: 0, max: 0 });
});

test('parse: load-mode flags and their errors', () => {
  const o = opts(['http://x/', '--count', '5', '--concurrency', '3', '--request-id-prefix', 'r', '--method', 'put']);
  assert.equal(o.concurrency, 3);
  assert.equal(o.requestIdPrefix, 'r');
  assert.equal(o.method, 'PUT');
  assert.equal(opts(['http://x/', '--summary']).concurrency, 1);
  assert.equal(opts(['http://x/']).concurrency, null);
  assert.equal(opts(['http://x/', '--h2c']).protocol, 'h2c');
  assert.equal(opts(['http://x/', '--ws']).protocol, 'ws');
  for (const bad of [
    ['http://x/', '--concurrency', '0'],
    ['http://x/', '--concurrency', '1.5'],
    ['http://x/', '--h2c', '--ws'],
    ['http://x/', '--bogus'],
  ]) {
    assert.ok('usage' in parseCurlArgs(bad), bad.join(' '));
  }
});

test('load mode: one JSON summary, numbered request ids, keep-alive connections', async (t) => {
  const { base, app, lines } = await echo(t);
  let connections = 0;
  app.server.on('connection', () => {
    connections += 1;
  });
  const r = await run([`${base}/x`, '--count', '40', '--concurrency', '4', '--request-id-prefix', 'load']);
  assert.equal(r.code, 0, r.err);
  const summary = JSON.parse(r.out) as Record<string, unknown>;
  assert.equal(summary.total, 40);
  assert.deepEqual(summary.byStatus, { '200': 40 });
  assert.deepEqual(summary.byPod, { 'echo-a': 40 });
  assert.equal(summary.failures, 0);
  assert.ok(connections <= 4, `${connections} connections for 4 keep-alive workers`);
  const ids = new Set(lines.filter((l) => l.msg === 'request').map((l) => l.requestId));
  assert.equal(ids.size, 40);
  assert.ok(ids.has('load-0') && ids.has('load-39'));

  // Per request id failure injection composes with numbered ids: each request fails once with 503.
  const failing = await run([
    `${base}/`,
    '--count',
    '6',
    '--summary',
    '--request-id-prefix',
    'f',
    '-H',
    'x-fail-times: 1',
  ]);
  assert.deepEqual(JSON.parse(failing.out).byStatus, { '503': 6 });
  const fail22 = await run([`${base}/?status=500`, '--count', '2', '--summary', '-f']);
  assert.equal(fail22.code, 22);
});

test('load mode: connection failures are counted, not thrown; exit 7', async () => {
  const closed = createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const port = (closed.address() as { port: number }).port;
  closed.close();
  await once(closed, 'close');
  const r = await run([`http://127.0.0.1:${port}/`, '--count', '3', '--concurrency', '2']);
  assert.equal(r.code, 7);
  const s = JSON.parse(r.out) as { failures: number; errors: Record<string, number> };
  assert.equal(s.failures, 3);
  assert.deepEqual(s.errors, { ECONNREFUSED: 3 });
});

test('load mode: a reset mid-run is one failure and the run goes on', async (t) => {
  const { base } = await echo(t);
  const r = await run([
    `${base}/`,
    '--count',
    '5',
    '--concurrency',
    '1',
    '--request-id-prefix',
    'rs',
    '-H',
    'x-fail-reset: 1',
  ]);
  const s = JSON.parse(r.out) as { failures: number; total: number };
  assert.equal(s.total, 5);
  assert.equal(s.failures, 5, 'each numbered request is reset once');
  assert.equal(r.code, 7);
});

test('--json: status, headers (x-pod) and the echo of Host, raw URL and method', async (t) => {
  const { base } = await echo(t, 'echo-json');
  const r = await run([`${base}/a/b?q=1&r=2`, '--json', '-H', 'host: shop.example:8080', '-X', 'PATCH', '-d', 'x']);
  assert.equal(r.code, 0);
  const reply = JSON.parse(r.out) as { status: number; headers: Record<string, string>; body: string };
  assert.equal(reply.status, 200);
  assert.equal(reply.headers['x-pod'], 'echo-json');
  const body = JSON.parse(reply.body) as Record<string, unknown>;
  assert.equal(body.host, 'shop.example:8080');
  assert.equal(body.url, '/a/b?q=1&r=2');
  assert.equal(body.path, '/a/b');
  assert.equal(body.method, 'PATCH');
  assert.equal(body.pod, 'echo-json');
});

test('--h2c: HTTP/2 prior knowledge, streams on one session', async (t) => {
  const sessions: http2.ServerHttp2Session[] = [];
  const server = http2.createServer((req, res) => {
    res.writeHead(200, { 'x-pod': 'h2-pod' }).end(`${req.httpVersion} ${req.url}`);
  });
  server.on('session', (s) => sessions.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const one = await run([`http://127.0.0.1:${port}/p?x=1`, '--h2c']);
  assert.equal(one.out, 'HTTP 200\n2.0 /p?x=1\n');
  const load = await run([`http://127.0.0.1:${port}/`, '--h2c', '--count', '20', '--concurrency', '5']);
  const s = JSON.parse(load.out) as { byStatus: Record<string, number>; byPod: Record<string, number> };
  assert.deepEqual(s.byStatus, { '200': 20 });
  assert.deepEqual(s.byPod, { 'h2-pod': 20 });
  assert.equal(sessions.length, 2, 'one session per curl run');
});

test('--ws: the upgraded tunnel echoes the data; a server that refuses shows its status', async (t) => {
  const { base } = await echo(t, 'echo-ws');
  const r = await run([`${base}/chat`, '--ws', '-d', 'hello through the tunnel']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, 'HTTP 101\nhello through the tunnel\n');

  const refusing = createServer((s: Socket) => {
    s.once('data', () => s.end('HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
  });
  refusing.listen(0, '127.0.0.1');
  await once(refusing, 'listening');
  t.after(() => refusing.close());
  const port = (refusing.address() as { port: number }).port;
  const refused = await run([`http://127.0.0.1:${port}/`, '--ws', '-f']);
  assert.equal(refused.out, 'HTTP 501\n');
  assert.equal(refused.code, 22);
});

test('x-fail-delay: the first N tries of a request id answer late, later ones at once', async (t) => {
  const { base, lines } = await echo(t, 'echo-slow');
  const headers = ['-H', 'x-request-id: slow-1', '-H', 'x-fail-times: 1', '-H', 'x-fail-delay: 150ms'];
  const first = await run([`${base}/`, '--summary', ...headers]);
  const second = await run([`${base}/`, '--summary', ...headers]);
  const firstSummary = JSON.parse(first.out) as { byStatus: Record<string, number>; latencyMs: { p50: number } };
  assert.deepEqual(firstSummary.byStatus, { '200': 1 }, 'slow, not failed');
  assert.ok(firstSummary.latencyMs.p50 >= 150, `first try answered after ${firstSummary.latencyMs.p50} ms`);
  assert.deepEqual(JSON.parse(second.out).byStatus, { '200': 1 });
  const logged = lines.filter((l) => l.requestId === 'slow-1').map((l) => l.injected ?? null);
  assert.deepEqual(logged, ['fail-slow', null]);
  const bad = await run([`${base}/`, '-H', 'x-fail-delay: later']);
  assert.match(bad.out, /^HTTP 400$/m);
});
