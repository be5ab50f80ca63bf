// Metrics, readiness and admin servers over real loopback HTTP (port 0), as Prometheus, the kubelet and
// an operator's curl would talk to them.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createAdminServer } from '../../src/runtime/admin.ts';
import { DrainController } from '../../src/runtime/drain.ts';
import { RuntimeError } from '../../src/runtime/errors.ts';
import type { HttpServer } from '../../src/runtime/http-server.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { createMetricsServer } from '../../src/runtime/metrics-server.ts';
import { startProcessServers } from '../../src/runtime/process-servers.ts';
import { createReadinessServer, ReadinessTracker } from '../../src/runtime/readiness.ts';
import { ZtunnelMetrics } from '../../src/ztunnel/metrics.ts';
import { parseMetrics } from '../helpers/parse-metrics.ts';

const LOOPBACK = { host: '127.0.0.1', port: 0 };

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

// node:http with agent:false, so no pooled socket outlives the test. `socket`: over the admin socket.
function request(
  server: HttpServer,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; socket?: boolean } = {},
): Promise<Reply> {
  const { host, port } = server.address;
  const to = opts.socket === true ? { socketPath: server.socketPath ?? '' } : { host, port };
  return new Promise((resolve, reject) => {
    const req = http.request({ ...to, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
      res.on('error', reject);
    });
    req.end();
  });
}

function socketDir(t: test.TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-admin-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function started<T extends HttpServer>(t: test.TestContext, server: T): Promise<T> {
  t.after(() => server.close());
  await server.start();
  return server;
}

test('metrics server serves Istio names on /metrics and /stats/prometheus with the registry content type', async (t) => {
  const metrics = new ZtunnelMetrics({ buildTag: '0.1.0' });
  const server = await started(t, createMetricsServer({ listen: LOOPBACK, registry: metrics.registry }));
  assert.notEqual(server.address.port, 0);
  for (const path of ['/metrics', '/stats/prometheus']) {
    const res = await request(server, path);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], metrics.registry.contentType);
    const parsed = parseMetrics(res.body);
    assert.equal(parsed.sum('istio_build', { component: 'ztunnel', tag: '0.1.0' }), 1);
    assert.equal(parsed.types.get('istio_tcp_connections_opened_total'), 'counter');
    assert.ok(parsed.has('process_cpu_user_seconds_total'));
  }
  const head = await request(server, '/metrics', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal((await request(server, '/nope')).status, 404);
  const post = await request(server, '/metrics', { method: 'POST' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET');
});

test('readiness is 503 naming pending tasks, then 200 "ready" once all are unblocked', async (t) => {
  const tracker = new ReadinessTracker();
  const xds = tracker.block('state manager');
  const certs = tracker.block('certificates');
  const server = await started(t, createReadinessServer({ listen: LOOPBACK, tracker }));
  let res = await request(server, '/healthz/ready');
  assert.equal(res.status, 503);
  // Liveness (the chart's livenessProbe) answers 200 while not ready: waiting is not a reason to restart.
  const live = await request(server, '/healthz/live');
  assert.equal(live.status, 200);
  assert.equal(live.body, 'live');
  assert.match(res.body, /certificates/);
  assert.match(res.body, /state manager/);
  xds.unblock();
  res = await request(server, '/healthz/ready');
  assert.equal(res.status, 503);
  assert.doesNotMatch(res.body, /state manager/);
  certs.unblock();
  res = await request(server, '/healthz/ready');
  assert.equal(res.status, 200);
  assert.equal(res.body, 'ready');
});

test('admin: index, config_dump JSON, logging GET/POST, quitquitquit POST drains, GET is 405', async (t) => {
  const socketPath = join(socketDir(t), 'admin.sock');
  const logLines: Record<string, unknown>[] = [];
  const logger = createLogger({
    component: 'ztunnel',
    destination: { write: (l: string) => logLines.push(JSON.parse(l) as Record<string, unknown>) },
  });
  const drain = new DrainController();
  const server = await started(
    t,
    createAdminServer({
      listen: LOOPBACK,
      socketPath,
      logLevel: logger,
      logger,
      configDump: async () => ({ workloads: [{ name: 'echo-1', namespace: 'default' }], version: 3 }),
      onQuit: () => void drain.trigger({ deadlineMs: 1_000 }),
    }),
  );

  const index = await request(server, '/');
  assert.equal(index.status, 200);
  for (const path of ['/config_dump', '/logging', '/quitquitquit']) assert.match(index.body, new RegExp(path));

  const dump = await request(server, '/config_dump');
  assert.equal(dump.status, 200);
  assert.match(String(dump.headers['content-type']), /application\/json/);
  assert.deepEqual(JSON.parse(dump.body), { workloads: [{ name: 'echo-1', namespace: 'default' }], version: 3 });

  assert.equal(statSync(socketPath).mode & 0o777, 0o600);
  assert.deepEqual(JSON.parse((await request(server, '/logging')).body).level, 'info');
  // Changes over TCP are refused before any handler runs: only the 0600 admin socket takes them.
  const overTcp = await request(server, '/logging?level=debug', { method: 'POST' });
  assert.equal(overTcp.status, 403);
  assert.match(overTcp.body, /admin socket/);
  assert.equal(logger.level, 'info');
  assert.equal((await request(server, '/quitquitquit', { method: 'POST' })).status, 403);
  assert.equal(drain.signal.aborted, false);
  assert.equal(JSON.parse((await request(server, '/logging', { socket: true })).body).level, 'info');
  const set = await request(server, '/logging?level=debug', { method: 'POST', socket: true });
  assert.equal(set.status, 200);
  assert.equal(logger.level, 'debug');
  assert.equal(JSON.parse((await request(server, '/logging')).body).level, 'debug');
  const bad = await request(server, '/logging?level=loud', { method: 'POST', socket: true });
  assert.equal(bad.status, 400);
  assert.equal(logger.level, 'debug');
  assert.ok(logLines.some((l) => l.msg === 'log level changed' && l.from === 'info' && l.to === 'debug'));

  const get = await request(server, '/quitquitquit');
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST');
  assert.equal(drain.signal.aborted, false);

  // A page in the operator's browser must not be able to stop the process.
  const fromBrowser = await request(server, '/quitquitquit', {
    method: 'POST',
    socket: true,
    headers: { origin: 'http://evil.example' },
  });
  assert.equal(fromBrowser.status, 403);
  assert.equal(drain.signal.aborted, false);

  const stopped = once(drain.signal, 'abort');
  const quit = await request(server, '/quitquitquit', { method: 'POST', socket: true });
  assert.equal(quit.status, 200);
  await stopped;
  assert.deepEqual(await drain.drained, { forced: false, remaining: 0 });

  assert.equal((await request(server, '/debug/unknown')).status, 404);
});

test('config_dump never serves a private key, a token or a PEM key block', async (t) => {
  const pem = '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n';
  const server = await started(
    t,
    createAdminServer({
      listen: LOOPBACK,
      logLevel: createLogger({ component: 'c', destination: { write() {} } }),
      configDump: () => ({
        certificates: [{ identity: 'spiffe://td/ns/a/sa/b', serial: '0a', privateKey: pem }],
        ca: { token: 'sekrit-token', caKey: 'k', nested: [{ note: pem }] },
        workloads: [{ name: 'echo-1' }],
      }),
      onQuit: () => {},
    }),
  );
  const res = await request(server, '/config_dump');
  assert.equal(res.status, 200);
  assert.doesNotMatch(res.body, /PRIVATE KEY|sekrit|MHcCAQEE/);
  assert.deepEqual(JSON.parse(res.body), {
    certificates: [{ identity: 'spiffe://td/ns/a/sa/b', serial: '0a', privateKey: '[redacted]' }],
    ca: { token: '[redacted]', caKey: '[redacted]', nested: [{ note: '[redacted]' }] },
    workloads: [{ name: 'echo-1' }],
  });
});

test('a config_dump provider that throws answers 500 and the server keeps serving', async (t) => {
  const server = await started(
    t,
    createAdminServer({
      listen: LOOPBACK,
      logLevel: createLogger({ component: 'c', destination: { write() {} } }),
      configDump: () => {
        throw new Error('store not ready');
      },
      onQuit: () => {},
    }),
  );
  assert.equal((await request(server, '/config_dump')).status, 500);
  assert.equal((await request(server, '/')).status, 200);
});

test('garbage and truncated requests get 400 or a close, and the server keeps serving', async (t) => {
  const tracker = new ReadinessTracker();
  const server = await started(t, createReadinessServer({ listen: LOOPBACK, tracker }));
  const inputs = [
    Buffer.from('\x00\x01\x02\xff\xfe garbage\r\n\r\n'),
    Buffer.from('GET /healthz/ready HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n'),
    Buffer.from(`GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`),
    Buffer.from('GET /healthz/re'), // truncated: the client then goes away
    Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), // an HTTP/2 preface on an HTTP/1 port
  ];
  let seed = 0x9e3779b9;
  for (let i = 0; i < 20; i++) {
    const junk = Buffer.alloc(64 + (i % 7) * 50);
    for (let j = 0; j < junk.length; j++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      junk[j] = seed & 0xff;
    }
    inputs.push(junk);
  }
  for (const input of inputs) {
    const socket = net.connect(server.address.port, server.address.host);
    t.after(() => socket.destroy());
    await once(socket, 'connect');
    socket.on('error', () => {}); // the server may reset us; that is the expected outcome
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.end(input);
    await once(socket, 'close');
    const text = Buffer.concat(chunks).toString('latin1');
    assert.ok(text === '' || /^HTTP\/1\.1 (400|431|404)/.test(text), `unexpected reply: ${text.slice(0, 80)}`);
  }
  const res = await request(server, '/healthz/ready');
  assert.equal(res.status, 200);
});

test('binding a taken address fails with FERRY_RUNTIME_LISTEN_FAILED; close is idempotent', async (t) => {
  const tracker = new ReadinessTracker();
  const first = await started(t, createReadinessServer({ listen: LOOPBACK, tracker }));
  const second = createReadinessServer({ listen: first.address, tracker });
  t.after(() => second.close());
  await assert.rejects(
    second.start(),
    (err: unknown) => err instanceof RuntimeError && err.code === 'FERRY_RUNTIME_LISTEN_FAILED',
  );
  await assert.rejects(
    second.start(),
    (err: unknown) => err instanceof RuntimeError && err.code === 'FERRY_RUNTIME_ALREADY_STARTED',
  );
  await first.close();
  await first.close();
});

test('close() ends idle keep-alive connections instead of waiting for them', async (t) => {
  const tracker = new ReadinessTracker();
  const server = await started(t, createReadinessServer({ listen: LOOPBACK, tracker }));
  const agent = new http.Agent({ keepAlive: true });
  t.after(() => agent.destroy());
  const { host, port } = server.address;
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get({ host, port, path: '/healthz/ready', agent }, resolve).on('error', reject);
  });
  res.resume();
  await once(res, 'end');
  const sockets = Object.values(agent.freeSockets).flat();
  assert.equal(sockets.length, 1); // held open by keep-alive
  const closedSocket = once(sockets[0] as net.Socket, 'close');
  await server.close();
  await closedSocket;
});

test('process servers: all three listen; quitquitquit drains and readiness turns 503', async (t) => {
  const adminSocketPath = join(socketDir(t), 'admin.sock');
  const logger = createLogger({ component: 'ztunnel', destination: { write() {} } });
  const drain = new DrainController();
  const tracker = new ReadinessTracker();
  const metrics = new ZtunnelMetrics({ processMetrics: false });
  const servers = await startProcessServers({
    metricsAddress: LOOPBACK,
    readinessAddress: LOOPBACK,
    adminAddress: LOOPBACK,
    adminSocketPath,
    registry: metrics.registry,
    readiness: tracker,
    logger,
    drain,
    drainDeadlineMs: 1_000,
    configDump: () => ({ workloads: [] }),
  });
  t.after(() => servers.close());
  assert.equal((await request(servers.readiness, '/healthz/ready')).status, 200);
  assert.equal((await request(servers.metrics, '/metrics')).status, 200);
  assert.equal((await request(servers.admin, '/quitquitquit', { method: 'POST', socket: true })).status, 200);
  await drain.drained;
  const res = await request(servers.readiness, '/healthz/ready');
  assert.equal(res.status, 503);
  assert.match(res.body, /draining/);
});

test('process servers start all or none: a taken port closes the others', async (t) => {
  const blocker = net.createServer();
  t.after(() => blocker.close());
  await once(blocker.listen(0, '127.0.0.1'), 'listening');
  const taken = blocker.address() as net.AddressInfo;
  const opts = {
    metricsAddress: LOOPBACK,
    readinessAddress: LOOPBACK,
    adminAddress: { host: '127.0.0.1', port: taken.port },
    registry: new ZtunnelMetrics({ processMetrics: false }).registry,
    readiness: new ReadinessTracker(),
    logger: createLogger({ component: 'c', destination: { write() {} } }),
    drain: new DrainController(),
    drainDeadlineMs: 10,
    configDump: () => ({}),
  };
  await assert.rejects(
    startProcessServers(opts),
    (err: unknown) => err instanceof RuntimeError && err.code === 'FERRY_RUNTIME_LISTEN_FAILED',
  );
});
