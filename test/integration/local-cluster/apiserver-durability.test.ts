// Durability of the `ferry apiserver` process: writes acknowledged before a kill -9 are all there after a
// restart on the same data directory, and resourceVersions continue from where they were.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { Pool } from 'undici';

const ROOT = new URL('../../../', import.meta.url).pathname;

interface Running {
  readonly child: ChildProcess;
  readonly url: string;
}

/** Starts `ferry apiserver` and resolves with its URL once it logs "API server ready". */
async function startProcess(dataDir: string, kubeconfig: string): Promise<Running> {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'src/cli/main.ts'), 'apiserver', '--data-dir', dataDir, '--port', '0', '--kubeconfig-out', kubeconfig],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ferry apiserver did not become ready')), 60_000);
    child.once('exit', (code) => reject(new Error(`ferry apiserver exited with ${code}`)));
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === 'API server ready' && entry.url !== undefined) {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
  });
  return { child, url };
}

test('every write acknowledged before kill -9 is there after the restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-apiserver-durable-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const kubeconfig = join(dir, 'kubeconfig');
  let running = await startProcess(dataDir, kubeconfig);
  t.after(() => running.child.kill('SIGKILL'));
  const { readFile } = await import('node:fs/promises');
  const token = (await readFile(join(dataDir, 'token'), 'utf8')).trim();
  const ca = await readFile(join(dataDir, 'pki', 'ca.pem'), 'utf8');
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

  let pool = new Pool(running.url, { connect: { ca }, connections: 32 });
  const acked = new Map<string, string>(); // name → resourceVersion acknowledged
  let stop = false;
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; !stop; i++) {
      const name = `sa-${w}-${i}`;
      try {
        const res = await pool.request({
          path: '/api/v1/namespaces/default/serviceaccounts',
          method: 'POST',
          headers,
          body: JSON.stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } }),
        });
        const body = (await res.body.json()) as { metadata?: { resourceVersion?: string } };
        if (res.statusCode === 201) acked.set(name, body.metadata?.resourceVersion ?? '');
      } catch {
        return; // the server is gone
      }
    }
  };
  const writers = Array.from({ length: 16 }, (_, w) => writer(w));
  while (acked.size < 300) await new Promise((r) => setTimeout(r, 10));
  running.child.kill('SIGKILL'); // in the middle of writes
  await new Promise((r) => running.child.once('exit', r));
  stop = true;
  await Promise.all(writers);
  await pool.destroy();
  const maxAcked = Math.max(...[...acked.values()].map(Number));

  running = await startProcess(dataDir, kubeconfig);
  pool = new Pool(running.url, { connect: { ca } });
  t.after(() => pool.destroy());
  const res = await pool.request({ path: '/api/v1/namespaces/default/serviceaccounts', method: 'GET', headers });
  const list = (await res.body.json()) as {
    metadata: { resourceVersion: string };
    items: { metadata: { name: string; resourceVersion: string } }[];
  };
  const stored = new Map(list.items.map((o) => [o.metadata.name, o.metadata.resourceVersion]));
  const lost = [...acked.keys()].filter((name) => stored.get(name) !== acked.get(name));
  assert.deepEqual(lost, [], `${lost.length} of ${acked.size} acknowledged writes lost`);
  assert.ok(Number(list.metadata.resourceVersion) >= maxAcked);
  t.diagnostic(
    `${acked.size} acknowledged before kill -9, all present; ${stored.size - acked.size} unacknowledged also stored`,
  );
  // The next write continues the resourceVersion sequence.
  const next = await pool.request({
    path: '/api/v1/namespaces/default/serviceaccounts',
    method: 'POST',
    headers,
    body: JSON.stringify({ metadata: { name: 'after-restart' } }),
  });
  const created = (await next.body.json()) as { metadata: { resourceVersion: string } };
  assert.equal(next.statusCode, 201);
  assert.ok(Number(created.metadata.resourceVersion) > Number(list.metadata.resourceVersion));
  running.child.kill('SIGTERM');
  await new Promise((r) => running.child.once('exit', r));
});
