// The controller's process servers in Kubernetes mode: readiness waits for the CA and for every informer
// to have listed (an API that is down keeps it not ready, and only that); `ferry controller` with the
// chart's flags answers /healthz/live, /healthz/ready and the metrics with its leadership, and publishes the
// trust bundle it was told to. Real HTTPS API server, real process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { startKubernetesController } from '../../src/controller/kubernetes-controller.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { ReadinessTracker } from '../../src/runtime/readiness.ts';
import { startLocalApi } from '../helpers/local-api.ts';

const FERRY = new URL('../../bin/ferry', import.meta.url).pathname;

test('not ready while the API is unreachable (informers not synced), ready once it answers', async (t) => {
  const api = await startLocalApi(t, { preinstallCrds: true });
  await api.server.close();
  const readiness = new ReadinessTracker();
  const starting = startKubernetesController({
    kube: { kubeconfigPath: api.kubeconfigPath },
    log: silentLogger,
    readiness,
    lease: { identity: 'replica-a' },
  });
  while (readiness.pending().includes('ca')) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(readiness.pending(), ['kubernetes-informers'], 'the CA is loaded; the API is down');
  await api.restart(0);
  const c = await starting;
  t.after(() => c.close());
  assert.equal(readiness.ready, true);
});

test('ferry controller with the chart flags: live, ready, leader metric, trust bundle published', async (t) => {
  const api = await startLocalApi(t, { preinstallCrds: true });
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ferry-system' } });
  const dir = await mkdtemp(join(tmpdir(), 'ferry-ctl-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const templatePath = join(dir, 'waypoint.yaml');
  await writeFile(
    templatePath,
    'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: __GATEWAY_NAME__\n  namespace: __GATEWAY_NAMESPACE__\n',
  );
  const child = spawn(
    FERRY,
    [
      'controller',
      '--kubeconfig',
      api.kubeconfigPath,
      '--trust-domain=cluster.local',
      '--cluster-domain=cluster.local',
      '--xds-address=127.0.0.1:0',
      '--ca-address=127.0.0.1:0',
      '--tls-dns-names=ferry-controller.ferry-system.svc,ferry-controller.ferry-system.svc.cluster.local',
      '--ca-secret=ferry-ca',
      '--root-cert-configmap=ferry-ca-root-cert',
      `--waypoint-template=${templatePath}`,
      '--lease-namespace=ferry-system',
      '--identity=cli-replica',
      '--admin=127.0.0.1:0',
      '--metrics=127.0.0.1:0',
      '--readiness=127.0.0.1:0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, POD_NAMESPACE: 'ferry-system' } },
  );
  t.after(() => child.kill('SIGKILL'));
  const output: string[] = [];
  child.stderr.on('data', (d: Buffer) => output.push(d.toString()));
  const tail = () => output.slice(-8).join('\n');
  let readinessUrl = '';
  let metricsUrl = '';
  const ready = new Promise<void>((resolve) => {
    createInterface({ input: child.stdout }).on('line', (l) => {
      output.push(l);
      if (!l.startsWith('{')) return;
      const line = JSON.parse(l) as { msg: string; readiness?: { port: number }; metrics?: { port: number } };
      if (line.readiness !== undefined && line.metrics !== undefined) {
        readinessUrl = `http://127.0.0.1:${line.readiness.port}`;
        metricsUrl = `http://127.0.0.1:${line.metrics.port}/stats/prometheus`;
      }
      if (line.msg === 'controller ready (Kubernetes source)') resolve();
    });
  });
  await ready;
  assert.equal((await fetch(`${readinessUrl}/healthz/live`)).status, 200, tail());
  assert.equal((await fetch(`${readinessUrl}/healthz/ready`)).status, 200, `informers synced, CA loaded\n${tail()}`);
  for (let i = 0; i < 400; i++) {
    if ((await fetch(metricsUrl).then((r) => r.text())).includes('ferry_controller_leader 1')) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.match(await fetch(metricsUrl).then((r) => r.text()), /^ferry_controller_leader 1$/m, tail());
  const secret = await api.get('v1', 'Secret', 'ferry-system', 'ferry-ca');
  const root = Buffer.from((secret.data as Record<string, string>)['root-cert.pem'] as string, 'base64').toString();
  let published: string | undefined;
  for (let i = 0; i < 400 && published === undefined; i++) {
    const cm = await api.get('v1', 'ConfigMap', 'ferry-system', 'ferry-ca-root-cert').catch(() => null);
    published = (cm?.data as Record<string, string> | undefined)?.['root-cert.pem'];
    if (published === undefined) await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(published !== undefined, `the leader published the trust bundle\n${tail()}`);
  assert.equal(
    new X509Certificate(published).fingerprint256,
    new X509Certificate(root).fingerprint256,
    'the Secret’s root',
  );
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, tail());
});

test('ferry controller: --ca-dir with --ca-secret, and a bad --tls-dns-names, are refused naming the flag', async () => {
  for (const [flags, pattern] of [
    [['--ca-dir=/etc/cacerts', '--ca-secret=ferry-ca'], /--ca-dir and --ca-secret/],
    [['--tls-dns-names=Bad_Name'], /--tls-dns-names/],
  ] as const) {
    const child = spawn(FERRY, ['controller', '--kubeconfig', '/nonexistent', ...flags], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const [code] = await once(child, 'exit');
    assert.equal(code, 1);
    assert.match(err, pattern);
  }
});
