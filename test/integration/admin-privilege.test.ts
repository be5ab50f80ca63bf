// Issue 9 §5: the admin APIs as an unprivileged local user would try them. A child process running as
// nobody (uid/gid 65534) tries the controller's `POST /delete` of a DENY policy and a ztunnel's
// `DELETE /pods/<uid>` over loopback TCP (403 before anything is parsed) and over the admin sockets
// (EACCES: 0600, root's), and reads mesh.json (EACCES); the policy and the enrollment are unchanged, the
// read-only dumps still answer without secrets, and root's `ferry delete` still works. Needs root.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type MeshStatus, startAdminApi } from '../../src/local-cluster/controller/admin-api.ts';
import { startLocalController } from '../../src/local-cluster/controller/local-controller.ts';
import {
  adminSocketPath,
  type LocalMeshConfig,
  writeMeshConfig,
} from '../../src/local-cluster/controller/mesh-files.ts';
import { createAdminServer } from '../../src/runtime/admin.ts';
import { adminSocketRequest } from '../../src/runtime/admin-socket.ts';
import { createLogger, silentLogger } from '../../src/runtime/logger.ts';
import { podRoutes } from '../../src/ztunnel/pods-api.ts';

const NOBODY = 65534;
const skip = process.getuid?.() === 0 ? false : 'needs root (spawns a process as uid 65534)';
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: apps}
spec: {action: DENY, rules: [{}]}
`;

type Attempt =
  | { readonly kind: 'tcp'; readonly url: string; readonly method: string; readonly body?: string }
  | { readonly kind: 'unix'; readonly socketPath: string; readonly method: string; readonly path: string }
  | { readonly kind: 'read'; readonly path: string };
type Outcome = { status: number; body: string } | { error: string };

// Runs in the child, as nobody: every attempt, its HTTP status and body or its errno code.
const ATTEMPTS_SCRIPT = `
const http = require('node:http');
const fs = require('node:fs');
const attempts = JSON.parse(process.argv[1]);
const one = (a) => new Promise((resolve) => {
  if (a.kind === 'read') {
    try { fs.readFileSync(a.path); resolve({ status: 0, body: 'read' }); } catch (e) { resolve({ error: e.code }); }
    return;
  }
  const target = a.kind === 'tcp' ? new URL(a.url) : null;
  const req = http.request(a.kind === 'tcp'
    ? { host: target.hostname, port: target.port, path: target.pathname, method: a.method }
    : { socketPath: a.socketPath, path: a.path, method: a.method }, (res) => {
    let body = '';
    res.setEncoding('utf8').on('data', (c) => { body += c; });
    res.on('end', () => resolve({ status: res.statusCode, body }));
  });
  req.on('error', (e) => resolve({ error: e.code }));
  req.end(a.body);
});
(async () => {
  const out = [];
  for (const a of attempts) out.push(await one(a));
  process.stdout.write(JSON.stringify({ uid: process.getuid(), out }));
})();
`;

async function asNobody(attempts: readonly Attempt[]): Promise<Outcome[]> {
  const child = spawn(process.execPath, ['-e', ATTEMPTS_SCRIPT, JSON.stringify(attempts)], {
    uid: NOBODY,
    gid: NOBODY,
    cwd: '/',
    env: { PATH: '/usr/bin:/bin' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, stderr);
  const result = JSON.parse(stdout) as { uid: number; out: Outcome[] };
  assert.equal(result.uid, NOBODY);
  return result.out;
}

/** A state root other users may traverse: the socket's own 0600 mode is what must refuse them. */
function openStateRoot(t: test.TestContext): string {
  const root = mkdtempSync(join(tmpdir(), 'ferry-admin-priv-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  chmodSync(root, 0o755);
  return root;
}

test('controller admin: nobody cannot delete a DENY policy; reads carry no secret; root CLI still works', {
  skip,
}, async (t) => {
  const root = openStateRoot(t);
  const dir = join(root, 'priv');
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  const manifest = join(root, 'deny.yaml');
  writeFileSync(manifest, MANIFEST, { mode: 0o644 });
  writeFileSync(join(dir, 'objects.jsonl'), '');
  const config: LocalMeshConfig = {
    cluster: 'priv',
    trustDomain: 'cluster.local',
    manifests: [manifest],
    controller: { xds: '127.0.0.1:0', ca: '127.0.0.1:0', admin: '127.0.0.1:0' },
    nodes: [],
  };
  await writeMeshConfig(dir, config);
  const controller = await startLocalController(dir, silentLogger);
  t.after(() => controller.close());
  const admin = await startAdminApi(controller);
  t.after(() => admin.close());
  const socket = adminSocketPath(dir, 'controller');
  assert.equal(statSync(socket).mode & 0o777, 0o600);
  const policies = async () => {
    const r = await adminSocketRequest(socket, 'GET', '/status');
    return (JSON.parse(r.text) as MeshStatus).policies.map((p) => `${p.namespace}/${p.name} ${p.action}`);
  };
  assert.deepEqual(await policies(), ['apps/deny-all Deny']);

  const body = JSON.stringify({ paths: [manifest] });
  const [overTcp, labelOverTcp, overSocket, meshJson, caKey, status] = await asNobody([
    { kind: 'tcp', url: `${admin.url}/delete`, method: 'POST', body },
    { kind: 'tcp', url: `${admin.url}/label`, method: 'POST', body: '{"kind":"Namespace","name":"apps"}' },
    { kind: 'unix', socketPath: socket, method: 'POST', path: '/delete' },
    { kind: 'read', path: join(dir, 'mesh.json') },
    { kind: 'read', path: join(dir, 'ca', 'ca-key.pem') },
    { kind: 'tcp', url: `${admin.url}/status`, method: 'GET' },
  ]);
  assert.equal((overTcp as { status: number }).status, 403);
  assert.match((overTcp as { body: string }).body, /admin socket/);
  assert.equal((labelOverTcp as { status: number }).status, 403);
  assert.deepEqual(overSocket, { error: 'EACCES' });
  assert.deepEqual(meshJson, { error: 'EACCES' });
  assert.deepEqual(caKey, { error: 'EACCES' });
  // The read-only dump still answers, and names no secret.
  assert.equal((status as { status: number }).status, 200);
  assert.doesNotMatch((status as { body: string }).body, /PRIVATE KEY|token/i);
  assert.deepEqual(await policies(), ['apps/deny-all Deny'], 'the DENY policy is still served');

  // Root's CLI goes over the socket and still works.
  const cli = spawn(process.execPath, [MAIN, 'delete', '-f', manifest, '--cluster', 'priv'], {
    env: { ...process.env, FERRY_STATE_DIR: root },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  cli.stdout.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  cli.stderr.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  const [code] = (await once(cli, 'exit')) as [number | null];
  assert.equal(code, 0, out);
  assert.deepEqual(await policies(), []);
});

test('ztunnel admin: nobody cannot unenroll a pod or quit the process; root can over the socket', {
  skip,
}, async (t) => {
  const dir = openStateRoot(t);
  const socketPath = join(dir, 'ztunnel-node-1-admin.sock');
  const uid = 'Kubernetes//Pod/apps/client-0';
  const enrolled = new Map([[uid, { uid, netnsPath: '/run/netns/x', cgroupPath: '/sys/fs/cgroup/x' }]]);
  let quit = 0;
  const server = createAdminServer({
    listen: { host: '127.0.0.1', port: 0 },
    socketPath,
    logLevel: createLogger({ component: 'ztunnel', destination: { write() {} } }),
    configDump: () => ({ pods: [...enrolled.values()] }),
    onQuit: () => {
      quit++;
    },
    extraRoutes: podRoutes({
      enrollPod: async () => {
        throw new Error('not in this test');
      },
      unenrollPod: async (id) => enrolled.delete(id),
      pods: () => [...enrolled.values()],
    }),
  });
  await server.start();
  t.after(() => server.close());
  const podPath = `/pods/${encodeURIComponent(uid)}`;
  const [del, post, quitTcp, logging, delSocket, pods, dump] = await asNobody([
    { kind: 'tcp', url: `${server.url}${podPath}`, method: 'DELETE' },
    { kind: 'tcp', url: `${server.url}/pods`, method: 'POST', body: JSON.stringify({ uid: 'x' }) },
    { kind: 'tcp', url: `${server.url}/quitquitquit`, method: 'POST' },
    { kind: 'tcp', url: `${server.url}/logging?level=debug`, method: 'POST' },
    { kind: 'unix', socketPath, method: 'DELETE', path: podPath },
    { kind: 'tcp', url: `${server.url}/pods`, method: 'GET' },
    { kind: 'tcp', url: `${server.url}/config_dump`, method: 'GET' },
  ]);
  for (const r of [del, post, quitTcp, logging]) assert.equal((r as { status: number }).status, 403);
  assert.deepEqual(delSocket, { error: 'EACCES' });
  assert.equal((pods as { status: number }).status, 200);
  assert.equal((dump as { status: number }).status, 200);
  assert.deepEqual([...enrolled.keys()], [uid], 'still enrolled');
  assert.equal(quit, 0);

  const byRoot = await adminSocketRequest(socketPath, 'DELETE', podPath);
  assert.equal(byRoot.status, 200, byRoot.text);
  assert.equal(enrolled.size, 0);
});
