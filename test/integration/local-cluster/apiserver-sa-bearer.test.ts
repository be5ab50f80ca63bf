// A pod's ServiceAccount token is a credential of the local API server, as of a real one: a process that
// loads the in-cluster config (token + ca.crt from the directory the local kubelet names in
// FERRY_SERVICEACCOUNT_DIR, server from KUBERNETES_SERVICE_HOST/PORT) lists pods; a token for another
// audience, a token whose bound pod is gone, and garbage are refused with 401. The kubelet's automounted
// in-cluster files are what such a process reads.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Json, KubeClient, loadKubeConfig } from '../../../src/kube/client.ts';
import { KubeError } from '../../../src/kube/errors.ts';
import { writePodVolumes } from '../../../src/local-cluster/kubelet/pod-volume-files.ts';
import { podVolumeDir, podVolumes, SERVICE_ACCOUNT_VOLUME } from '../../../src/local-cluster/kubelet/pod-volumes.ts';
import { type LocalApi, startLocalApi } from '../../helpers/local-api.ts';

async function tokenFor(api: LocalApi, pod: string, audience?: string): Promise<string> {
  const answer = await api.client.request('POST', '/api/v1/namespaces/demo/serviceaccounts/web/token', {
    json: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        ...(audience === undefined ? {} : { audiences: [audience] }),
        expirationSeconds: 600,
        boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod },
      },
    },
  });
  return (answer.status as { token: string }).token;
}

/** A client as a pod would build it: in-cluster config from a service-account directory. */
async function inClusterClient(t: import('node:test').TestContext, api: LocalApi, token: string) {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-sa-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cluster = api.client.config.getCurrentCluster();
  assert.ok(cluster?.caData !== undefined, 'the local kubeconfig carries the API CA');
  await writeFile(join(dir, 'token'), token);
  await writeFile(join(dir, 'ca.crt'), Buffer.from(cluster.caData, 'base64'));
  await writeFile(join(dir, 'namespace'), 'demo');
  return clientFromDir(api, dir);
}

/** loadKubeConfig as `ferry controller` calls it in a pod: KUBERNETES_SERVICE_HOST/PORT + the files' dir. */
function clientFromDir(api: LocalApi, dir: string): KubeClient {
  const server = new URL(api.client.server);
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  process.env.KUBERNETES_SERVICE_HOST = server.hostname;
  process.env.KUBERNETES_SERVICE_PORT = server.port;
  try {
    return new KubeClient(loadKubeConfig({ inCluster: true, serviceAccountDir: dir }));
  } finally {
    for (const [k, v] of [
      ['KUBERNETES_SERVICE_HOST', saved.host],
      ['KUBERNETES_SERVICE_PORT', saved.port],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function status(client: KubeClient): Promise<number> {
  try {
    await client.request('GET', '/api/v1/namespaces/demo/pods');
    return 200;
  } catch (err) {
    assert.ok(err instanceof KubeError, String(err));
    return (err as KubeError).status;
  }
}

test('a bound ServiceAccount token is accepted as a bearer credential, only while it is valid', async (t) => {
  const api = await startLocalApi(t);
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } });
  await api.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'web', namespace: 'demo' } });
  await api.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'demo' },
    spec: { nodeName: 'node-a', serviceAccountName: 'web', containers: [{ name: 'c', image: 'echo' }] },
  });

  const good = await inClusterClient(t, api, await tokenFor(api, 'web-1'));
  const list = await good.request('GET', '/api/v1/namespaces/demo/pods');
  assert.deepEqual(
    (list.items as { metadata: { name: string } }[]).map((p) => p.metadata.name),
    ['web-1'],
  );

  const otherAudience = await inClusterClient(t, api, await tokenFor(api, 'web-1', 'ferry-ca'));
  assert.equal(await status(otherAudience), 401);
  const garbage = await inClusterClient(t, api, 'not-a-token');
  assert.equal(await status(garbage), 401);

  await api.remove('v1', 'Pod', 'demo', 'web-1', { gracePeriodSeconds: 0 });
  assert.equal(await status(good), 401, 'the token of a deleted pod is no longer a credential');
});

test("the kubelet's automounted in-cluster files (token, ca.crt, namespace) give a pod's process API access", async (t) => {
  const api = await startLocalApi(t);
  const stateDir = await mkdtemp(join(tmpdir(), 'ferry-kubelet-sa-'));
  t.after(() => rm(stateDir, { recursive: true, force: true }));
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } });
  await api.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'web', namespace: 'demo' } });
  const write = async (name: string, serviceAccount: string) => {
    const pod = (await api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'demo' },
      spec: { nodeName: 'node-a', serviceAccountName: serviceAccount, containers: [{ name: 'c', image: 'echo' }] },
    })) as Json & { metadata: { uid: string } };
    const volumes = podVolumes(pod);
    assert.ok(volumes.ok);
    const owner = { uid: pod.metadata.uid, namespace: 'demo', name, serviceAccount };
    const written = await writePodVolumes(api.client, stateDir, owner, volumes.volumes, Date.now(), t.signal);
    assert.ok(written.ok, written.ok ? '' : written.message);
    return podVolumeDir(stateDir, pod.metadata.uid, SERVICE_ACCOUNT_VOLUME);
  };

  const dir = await write('web-1', 'web');
  assert.equal(await readFile(join(dir, 'namespace'), 'utf8'), 'demo');
  const list = await clientFromDir(api, dir).request('GET', '/api/v1/namespaces/demo/pods');
  assert.equal((list.items as unknown[]).length, 1);

  // A pod whose ServiceAccount does not exist still starts: the in-cluster files come without a token.
  const orphan = await write('lost-1', 'nobody');
  assert.equal(existsSync(join(orphan, 'token')), false);
  assert.ok(existsSync(join(orphan, 'ca.crt')));
  assert.throws(() => clientFromDir(api, orphan), { code: 'FERRY_KUBE_CONFIG' });
});
