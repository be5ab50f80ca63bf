// The built-in test apps over real loopback sockets: http-echo's reply and directives (per-request-id
// failure injection with a status or a TCP reset), garbage input, tcp-echo with half-close, and the curl
// client's output and exit codes.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { test } from 'node:test';
import { type CurlOptions, curlOnce, parseCurlArgs, runCurl } from '../../../../src/cli/testapp/curl.ts';
import { FailureLedger, parseDuration, planEcho } from '../../../../src/cli/testapp/directives.ts';
import { startHttpEcho } from '../../../../src/cli/testapp/http-echo.ts';
import { startTcpEcho } from '../../../../src/cli/testapp/tcp-echo.ts';

function curlOpts(argv: string[]): CurlOptions {
  const opts = parseCurlArgs(argv);
  assert.ok(!('usage' in opts), JSON.stringify(opts));
  return opts;
}

async function echoServer(t: { after: (fn: () => PromiseLike<void>) => void }) {
  const app = await startHttpEcho({ port: 0, host: '127.0.0.1', podName: 'echo-1', namespace: 'default' });
  t.after(() => app[Symbol.asyncDispose]());
  return `http://127.0.0.1:${app.port}`;
}

test('directives: durations and failure plans are pure decisions', () => {
  assert.equal(parseDuration('200ms'), 200);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('15'), 15);
  assert.equal(parseDuration('61s'), null);
  assert.equal(parseDuration('-1'), null);
  const q = new URLSearchParams();
  assert.deepEqual(
    planEcho(q, { 'x-fail-times': '2' }, () => 0),
    { kind: 'fail-status', status: 503, delayMs: 0, attempt: 1 },
  );
  assert.deepEqual(
    planEcho(q, { 'x-fail-times': '2' }, () => 2),
    { kind: 'respond', status: 200, delayMs: 0 },
  );
  assert.equal(planEcho(q, { 'x-fail-reset': '1' }, () => 0).kind, 'fail-reset');
  assert.equal(planEcho(new URLSearchParams('delay=soon'), {}, () => 0).kind, 'bad-request');
  assert.equal(planEcho(q, { 'x-fail-times': 'x' }, () => 0).kind, 'bad-request');
  const ledger = new FailureLedger(2);
  for (const id of ['a', 'b', 'c']) ledger.increment(id);
  assert.equal(ledger.count('a'), 0, 'oldest id evicted: memory stays bounded');
  assert.equal(ledger.count('c'), 1);
});

test('http-echo: JSON names the pod, echoes the request and the peer', async (t) => {
  const base = await echoServer(t);
  const r = await curlOnce(curlOpts([`${base}/a/b?x=1`, '-H', 'x-test: yes', '-d', 'hello']));
  assert.equal(r.kind, 'response');
  assert.equal(r.status, 200);
  const body = JSON.parse(r.body) as Record<string, unknown>;
  assert.equal(body.pod, 'echo-1');
  assert.equal(body.namespace, 'default');
  assert.equal(body.method, 'POST');
  assert.equal(body.path, '/a/b');
  assert.deepEqual(body.query, { x: '1' });
  assert.equal((body.headers as Record<string, string>)['x-test'], 'yes');
  assert.equal(body.body, 'hello');
  assert.equal((body.peer as { address: string }).address, '127.0.0.1');
  const slow = await curlOnce(curlOpts([`${base}/?delay=5ms&status=418`]));
  assert.equal(slow.kind === 'response' && slow.status, 418);
  const bad = await curlOnce(curlOpts([`${base}/?delay=forever`]));
  assert.equal(bad.kind === 'response' && bad.status, 400);
});

test('http-echo: x-fail-times fails the first N requests of each request id, then succeeds', async (t) => {
  const base = await echoServer(t);
  const statuses = async (id: string, n: number, extra: string[] = []) => {
    const out: (number | string)[] = [];
    for (let i = 0; i < n; i++) {
      const r = await curlOnce(curlOpts([base, '-H', `x-request-id: ${id}`, '-H', 'x-fail-times: 2', ...extra]));
      out.push(r.kind === 'response' ? r.status : r.code);
    }
    return out;
  };
  assert.deepEqual(await statuses('r1', 3, ['-H', 'x-fail-status: 502']), [502, 502, 200]);
  assert.deepEqual(await statuses('r2', 3), [503, 503, 200], 'another request id has its own count');
  assert.deepEqual(await statuses('r3', 3, ['-H', 'x-fail-reset: 1']), ['ECONNRESET', 'ECONNRESET', 200]);
});

test('http-echo: garbage and truncated requests get 400 or a close, and it keeps serving', async (t) => {
  const base = await echoServer(t);
  const port = Number(new URL(base).port);
  const inputs = [
    Buffer.from('\x00\x01\x02garbage\r\n\r\n'),
    Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc'), // truncated body, then FIN
    Buffer.from('GET /\r\n\r\n'),
    Buffer.from(`GET / HTTP/1.1\r\n${'x-a: b\r\n'.repeat(5000)}\r\n`),
    Buffer.alloc(4096, 0xff),
  ];
  for (const input of inputs) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined); // a reset is an acceptable answer to garbage
    await once(s, 'connect');
    s.end(input);
    s.resume();
    await once(s, 'close');
  }
  const r = await curlOnce(curlOpts([base]));
  assert.equal(r.kind === 'response' && r.status, 200);
});

test('tcp-echo: echoes bytes and ends after the client half-closes', async (t) => {
  const app = await startTcpEcho({ port: 0, host: '127.0.0.1' });
  t.after(() => app[Symbol.asyncDispose]());
  const s = connect({ port: app.port, host: '127.0.0.1', allowHalfOpen: true });
  await once(s, 'connect');
  const payload = Buffer.alloc(256 * 1024, 7);
  s.end(payload);
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  assert.ok(Buffer.concat(chunks).equals(payload));
});

test('curl: prints status and body, exit 7 on connection failure, 22 with --fail, --fail-fast stops', async (t) => {
  const base = await echoServer(t);
  const closed = createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const deadPort = (closed.address() as { port: number }).port;
  closed.close();
  await once(closed, 'close');

  const run = async (argv: string[]) => {
    let out = '';
    let err = '';
    const code = await runCurl(
      curlOpts(argv),
      (x) => {
        out += x;
      },
      (x) => {
        err += x;
      },
    );
    return { code, out, err };
  };
  const ok = await run([`${base}/`, '--count', '2']);
  assert.equal(ok.code, 0);
  assert.equal(ok.out.match(/^HTTP 200$/gm)?.length, 2);
  const refused = await run([`http://127.0.0.1:${deadPort}/`, '--count', '3', '--fail-fast']);
  assert.equal(refused.code, 7);
  assert.equal(refused.err.match(/^curl: \(7\) ECONNREFUSED/gm)?.length, 1, 'stopped at the first failure');
  const failed = await run([`${base}/?status=503`, '-f']);
  assert.equal(failed.code, 22);
  assert.deepEqual(parseCurlArgs([]), { usage: 'expected exactly one URL' });
  assert.ok('usage' in parseCurlArgs(['https://x/']));
  assert.ok('usage' in parseCurlArgs(['http://x/', '-H', 'nocolon']));
});
