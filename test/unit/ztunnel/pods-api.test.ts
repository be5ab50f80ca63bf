// The admin /pods endpoints over a real HTTP server: JSON body parsing, body size limit, DELETE with an
// encoded uid, InPodError codes mapped to statuses, browser-originated changes refused, and changes over
// TCP refused (only the 0600 admin socket takes them).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { HttpServer } from '../../../src/runtime/http-server.ts';
import { parseRequest } from '../../../src/ztunnel/in-pod.ts';
import { InPodError } from '../../../src/ztunnel/in-pod-errors.ts';
import { podRoutes } from '../../../src/ztunnel/pods-api.ts';

test('admin /pods: enroll, list, unenroll, and errors with codes', async (t) => {
  const enrolled = new Map<string, unknown>();
  const dir = mkdtempSync(join(tmpdir(), 'ferry-pods-api-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'admin.sock');
  const server = new HttpServer({
    name: 'admin',
    listen: { host: '127.0.0.1', port: 0 },
    socketPath,
    routes: podRoutes({
      enrollPod: async (body) => {
        const req = parseRequest(body);
        if (req.uid === 'Kubernetes//Pod/default/ghost') {
          throw new InPodError('FERRY_INPOD_UNKNOWN_WORKLOAD', 'no such workload');
        }
        enrolled.set(req.uid, req);
        return req;
      },
      unenrollPod: async (uid) => enrolled.delete(uid),
      pods: () => [...enrolled.values()],
    }),
  });
  await server.start();
  t.after(() => server.close());
  const call = (method: string, path: string, body?: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request({ socketPath, method, path, headers, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  const overTcp = async (method: string, path: string, body?: string) => {
    const res = await fetch(`${server.url}${path}`, { method, ...(body === undefined ? {} : { body }) });
    return { status: res.status, text: await res.text() };
  };
  const pod = { uid: 'Kubernetes//Pod/default/client', netnsPath: '/run/netns/a', cgroupPath: '/sys/fs/cgroup/a' };

  // Over the loopback TCP port: reads only.
  assert.equal((await overTcp('POST', '/pods', JSON.stringify(pod))).status, 403);
  assert.deepEqual(JSON.parse((await overTcp('GET', '/pods')).text), { pods: [] });

  assert.equal((await call('POST', '/pods', JSON.stringify(pod))).status, 200);
  assert.deepEqual(JSON.parse((await call('GET', '/pods')).text), { pods: [pod] });

  const ghost = await call('POST', '/pods', JSON.stringify({ ...pod, uid: 'Kubernetes//Pod/default/ghost' }));
  assert.equal(ghost.status, 404);
  assert.equal(JSON.parse(ghost.text).code, 'FERRY_INPOD_UNKNOWN_WORKLOAD');
  for (const bad of ['', '{"uid":', 'null', '[]', JSON.stringify({ ...pod, netnsPath: 'relative' }), '\u0000\u00ff']) {
    const res = await call('POST', '/pods', bad);
    assert.equal(res.status, 400, bad);
    assert.equal(JSON.parse(res.text).code, 'FERRY_INPOD_BAD_REQUEST');
  }
  assert.equal((await call('POST', '/pods', 'x'.repeat(64 * 1024))).status, 413);
  assert.equal((await call('POST', '/pods', JSON.stringify(pod), { origin: 'https://evil.example' })).status, 403);
  assert.equal((await call('PUT', '/pods', '{}')).status, 405);

  const path = `/pods/${encodeURIComponent(pod.uid)}`;
  assert.equal((await overTcp('DELETE', path)).status, 403);
  assert.equal(enrolled.size, 1);
  assert.equal((await call('DELETE', path, undefined, { origin: 'https://evil.example' })).status, 403);
  assert.equal((await call('DELETE', path)).status, 200);
  assert.equal((await call('DELETE', path)).status, 404);
  assert.equal((await call('DELETE', '/pods/%E0%A4%A')).status, 400);
  assert.deepEqual(JSON.parse((await call('GET', '/pods')).text), { pods: [] });
  assert.equal((await call('GET', '/podsx')).status, 404);
});
