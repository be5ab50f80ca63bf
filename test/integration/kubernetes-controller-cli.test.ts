// `ferry controller --kubeconfig PATH` as a process against the local API server: it becomes ready, takes
// the Lease, shows an API object's workload at its xDS port, and on SIGTERM exits 0 and releases the Lease
// (so another replica takes over at once). A bad flag is refused with a message naming it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { startLocalApi } from '../helpers/local-api.ts';

const FERRY = new URL('../../bin/ferry', import.meta.url).pathname;

test('ferry controller --kubeconfig: ready, leads, releases the Lease on SIGTERM', async (t) => {
  const api = await startLocalApi(t, { preinstallCrds: true });
  const child = spawn(
    FERRY,
    [
      'controller',
      '--kubeconfig',
      api.kubeconfigPath,
      '--xds-address',
      '127.0.0.1:0',
      '--ca-address',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--metrics',
      '127.0.0.1:0',
      '--readiness',
      '127.0.0.1:0',
      '--identity',
      'cli-replica',
      '--log-level',
      'info',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.after(() => child.kill('SIGKILL'));
  const lines: string[] = [];
  const rl = createInterface({ input: child.stdout });
  const ready = new Promise<void>((resolve) => {
    rl.on('line', (l) => {
      lines.push(l);
      if (l.includes('controller ready (Kubernetes source)')) resolve();
    });
  });
  await ready;
  const holder = async () => {
    const lease = await api.get('coordination.k8s.io/v1', 'Lease', 'kube-system', 'ferry-controller').catch(() => null);
    return (lease?.spec as { holderIdentity?: string | null } | undefined)?.holderIdentity ?? null;
  };
  for (let i = 0; i < 200 && (await holder()) !== 'cli-replica'; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(await holder(), 'cli-replica');
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, lines.slice(-5).join('\n'));
  assert.equal(await holder(), null, 'the Lease is released on a graceful stop');
});

test('ferry controller --source: anything but kubernetes is refused, naming the flag', async () => {
  const child = spawn(FERRY, ['controller', '--source', 'files', '--kubeconfig', '/nonexistent'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const [code] = await once(child, 'exit');
  assert.equal(code, 1);
  assert.match(err, /--source/);
});
