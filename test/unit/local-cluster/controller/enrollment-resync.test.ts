// Enrollment is re-checked periodically against each ztunnel's GET /pods: a pod unenrolled behind the
// controller's back (DELETE /pods/<uid> on the ztunnel admin API) is enrolled again within one resync period
// plus a pass, without a new desired state. A ztunnel that is down meanwhile is retried on the next period.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { EnrollmentReconciler, type PodPaths } from '../../../../src/local-cluster/controller/enrollment.ts';
import { silentLogger } from '../../../../src/runtime/logger.ts';

/** A ztunnel admin API stand-in: GET/POST /pods, DELETE /pods/<uid>; `up = false` answers 503. */
async function fakeZtunnel() {
  const pods = new Map<string, PodPaths>();
  const posts: string[] = [];
  const up = { value: true };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      if (!up.value) {
        res.writeHead(503).end('down');
        return;
      }
      if (req.method === 'GET' && req.url === '/pods') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ pods: [...pods].map(([uid, p]) => ({ uid, ...p })) }));
      } else if (req.method === 'POST' && req.url === '/pods') {
        const p = JSON.parse(body) as { uid: string; netnsPath: string; cgroupPath: string };
        pods.set(p.uid, { netnsPath: p.netnsPath, cgroupPath: p.cgroupPath });
        posts.push(p.uid);
        res.writeHead(200).end('{}');
      } else if (req.method === 'DELETE' && req.url?.startsWith('/pods/')) {
        res.writeHead(pods.delete(decodeURIComponent(req.url.slice(6))) ? 200 : 404).end('{}');
      } else res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  // The same API on a Unix socket too (the ztunnel's admin socket, where changes are accepted).
  const dir = mkdtempSync(join(tmpdir(), 'ferry-enroll-'));
  const socket = join(dir, 'admin.sock');
  const onSocket = createServer((req, res) => server.emit('request', req, res));
  await new Promise<void>((r) => onSocket.listen(socket, r));
  const close = () => {
    server.close();
    onSocket.close();
    rmSync(dir, { recursive: true, force: true });
  };
  const node = { name: 'node-0', admin: `127.0.0.1:${port}`, adminSocket: socket };
  return { close, pods, node, posts, up };
}

const paths: PodPaths = { netnsPath: '/run/netns/x', cgroupPath: '/sys/fs/cgroup/x' };

async function until(what: string, limitMs: number, ok: () => boolean): Promise<number> {
  const start = Date.now();
  while (!ok()) {
    if (Date.now() - start > limitMs) assert.fail(`${what}: not within ${limitMs} ms`);
    await delay(10);
  }
  return Date.now() - start;
}

test('a pod unenrolled behind the controller is enrolled again by the periodic re-check', async (t) => {
  const z = await fakeZtunnel();
  t.after(() => z.close());
  const r = new EnrollmentReconciler([z.node], silentLogger, undefined, undefined, {
    resyncMs: 200,
  });
  t.after(() => r.close());
  r.setDesired(new Map([['node-0', new Map([['uid-a', paths]])]]));
  await r.whenConverged(AbortSignal.timeout(5_000));
  assert.deepEqual([...z.pods.keys()], ['uid-a']);

  z.pods.delete('uid-a'); // DELETE /pods/uid-a by someone else: the controller is not told
  const ms = await until('re-enrolled', 2_000, () => z.pods.has('uid-a'));
  assert.ok(ms <= 1_000, `re-enrolled after ${ms} ms`);
  assert.deepEqual(z.posts, ['uid-a', 'uid-a']);
  assert.ok(r.converged);
  assert.deepEqual([...r.enrolled()], ['uid-a']);
});

test('a ztunnel down during a re-check is retried on the next period; an extra pod is unenrolled', async (t) => {
  const z = await fakeZtunnel();
  t.after(() => z.close());
  const r = new EnrollmentReconciler([z.node], silentLogger, undefined, undefined, {
    resyncMs: 100,
  });
  t.after(() => r.close());
  r.setDesired(new Map([['node-0', new Map([['uid-a', paths]])]]));
  await r.whenConverged(AbortSignal.timeout(5_000));
  z.up.value = false;
  await until('error seen', 2_000, () => r.status()[0]?.error !== null);
  assert.ok(r.converged, 'a failed periodic check does not make the desired state unconverged');
  z.pods.clear(); // restarted without its state
  z.pods.set('uid-stray', paths); // and with a pod nobody asked for
  z.up.value = true;
  await until('re-enrolled', 2_000, () => z.pods.has('uid-a') && !z.pods.has('uid-stray'));
  await until('error cleared', 2_000, () => r.status()[0]?.error === null);
});

test('resyncMs 0: no periodic check (the behaviour before)', async (t) => {
  const z = await fakeZtunnel();
  t.after(() => z.close());
  const r = new EnrollmentReconciler([z.node], silentLogger, undefined, undefined, {
    resyncMs: 0,
  });
  t.after(() => r.close());
  r.setDesired(new Map([['node-0', new Map([['uid-a', paths]])]]));
  await r.whenConverged(AbortSignal.timeout(5_000));
  z.pods.clear();
  await delay(300);
  assert.equal(z.pods.size, 0);
});
