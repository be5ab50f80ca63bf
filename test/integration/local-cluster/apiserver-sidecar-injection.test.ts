// `ferry apiserver --sidecar-injection <file>` (what `ferry up --api` passes): pods created in a namespace
// labelled for injection come back with `istio-proxy`; a bad values file stops the server with a clear error.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { KubeClient, loadKubeConfig } from '../../../src/kube/client.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;
const VALUES = {
  image: 'ferry/ferry:local',
  trustDomain: 'cluster.local',
  xdsAddress: '10.244.255.254:15010',
  caAddress: '10.244.255.254:15012',
  caAudience: 'ferry-ca',
  rootCertConfigMap: 'ferry-ca-root-cert',
};

function startApiserver(dir: string, valuesFile: string) {
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'src/cli/main.ts'),
      'apiserver',
      '--data-dir',
      join(dir, 'data'),
      '--port',
      '0',
      '--kubeconfig-out',
      join(dir, 'kubeconfig'),
      '--sidecar-injection',
      valuesFile,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const lines = createInterface({ input: child.stdout });
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`ferry apiserver exited with ${code}: ${stderr}`)));
    lines.on('line', (line) => {
      if (line.includes('"API server ready"')) resolve();
    });
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, ready, exited, stderr: () => stderr };
}

test('the API server injects istio-proxy into pods of an injection-enabled namespace only', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-apiserver-inject-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const valuesFile = join(dir, 'sidecar-injection.json');
  await writeFile(valuesFile, JSON.stringify(VALUES));
  const server = startApiserver(dir, valuesFile);
  t.after(() => server.child.kill('SIGKILL'));
  await server.ready;
  const client = new KubeClient(loadKubeConfig({ kubeconfigPath: join(dir, 'kubeconfig') }));
  t.after(() => client.close());
  const containersOf = async (ns: string): Promise<string[]> => {
    await client.request('POST', `/api/v1/namespaces/${ns}/pods`, {
      json: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'app' },
        spec: { containers: [{ name: 'app', image: 'ferry/ferry' }] },
      },
    });
    const pod = (await client.get(`/api/v1/namespaces/${ns}/pods/app`)) as {
      spec: { containers: { name: string; image: string }[] };
    };
    return pod.spec.containers.map((c) => `${c.name}=${c.image}`);
  };
  for (const [name, labels] of [
    ['mesh', { 'istio-injection': 'enabled' }],
    ['ambient', { 'istio.io/dataplane-mode': 'ambient' }],
  ] as const) {
    await client.request('POST', '/api/v1/namespaces', {
      json: { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } },
    });
  }
  assert.deepEqual(await containersOf('mesh'), ['app=ferry/ferry', 'istio-proxy=ferry/ferry:local']);
  assert.deepEqual(await containersOf('ambient'), ['app=ferry/ferry']);
});

test('an incomplete values file stops the API server at start, naming what is missing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-apiserver-inject-bad-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const valuesFile = join(dir, 'sidecar-injection.json');
  await writeFile(valuesFile, JSON.stringify({ ...VALUES, caAudience: '' }));
  const server = startApiserver(dir, valuesFile);
  t.after(() => server.child.kill('SIGKILL'));
  server.ready.catch(() => undefined);
  assert.notEqual(await server.exited, 0);
  assert.match(server.stderr(), /FERRY_APISERVER_BAD_OPTION/);
  assert.match(server.stderr(), /caAudience/);
});
