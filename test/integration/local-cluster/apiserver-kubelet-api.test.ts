// The API the bare cluster's kubelets and scheduler use, against the real local API server: pods/binding
// (bind once, 409 after), graceful deletion of bound pods (marked, then removed by a grace-0 delete with a
// uid precondition; unbound pods go at once; off unless asked for), and the apps/v1 ReplicaSet and
// DaemonSet kinds with /status and /scale.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Json } from '../../../src/kube/client.ts';
import { KubeError } from '../../../src/kube/errors.ts';
import { startLocalApi } from '../../helpers/local-api.ts';

const PODS = '/api/v1/namespaces/default/pods';
const pod = (name: string, nodeName?: string): Json => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name },
  spec: { ...(nodeName === undefined ? {} : { nodeName }), containers: [{ name: 'c', image: 'ferry/echo' }] },
});

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof KubeError) return err.status;
    throw err;
  }
}

test('pods/binding sets spec.nodeName once; a second binding is a 409 Conflict', async (t) => {
  const api = await startLocalApi(t);
  await api.client.request('POST', PODS, { json: pod('p') });
  const binding = (node: string) => ({
    json: { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'p' }, target: { kind: 'Node', name: node } },
  });
  await api.client.request('POST', `${PODS}/p/binding`, binding('node-1'));
  assert.equal(((await api.client.get(`${PODS}/p`)).spec as Json).nodeName, 'node-1');
  assert.equal(await status(api.client.request('POST', `${PODS}/p/binding`, binding('node-0'))), 409);
});

test('graceful deletion: a bound pod is only marked, a grace-0 delete with its uid removes it', async (t) => {
  const api = await startLocalApi(t, { gracefulPodDeletion: true });
  const created = await api.client.request('POST', PODS, { json: pod('bound', 'node-0') });
  const uid = (created.metadata as Json).uid;
  await api.client.request('DELETE', `${PODS}/bound`);
  const marked = (await api.client.get(`${PODS}/bound`)).metadata as Json;
  assert.equal(typeof marked.deletionTimestamp, 'string');
  assert.equal(marked.deletionGracePeriodSeconds, 30);
  const wrongUid = { json: { gracePeriodSeconds: 0, preconditions: { uid: 'someone-else' } } };
  assert.equal(await status(api.client.request('DELETE', `${PODS}/bound`, wrongUid)), 409);
  await api.client.request('DELETE', `${PODS}/bound`, { json: { gracePeriodSeconds: 0, preconditions: { uid } } });
  assert.equal(await status(api.client.get(`${PODS}/bound`)), 404);
  await api.client.request('POST', PODS, { json: pod('unbound') });
  await api.client.request('DELETE', `${PODS}/unbound`);
  assert.equal(await status(api.client.get(`${PODS}/unbound`)), 404, 'no kubelet runs it: deleted at once');
});

test('without gracefulPodDeletion a bound pod is deleted at once (clusters without kubelets)', async (t) => {
  const api = await startLocalApi(t);
  await api.client.request('POST', PODS, { json: pod('bound', 'node-0') });
  await api.client.request('DELETE', `${PODS}/bound`);
  assert.equal(await status(api.client.get(`${PODS}/bound`)), 404);
});

test('apps/v1 ReplicaSet (status, scale) and DaemonSet (defaults to RollingUpdate) are served', async (t) => {
  const api = await startLocalApi(t);
  const template = { metadata: { labels: { app: 'a' } }, spec: { containers: [{ name: 'c', image: 'ferry/echo' }] } };
  const base = '/apis/apps/v1/namespaces/default';
  await api.client.request('POST', `${base}/replicasets`, {
    json: {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name: 'rs' },
      spec: { selector: { matchLabels: { app: 'a' } }, template },
    },
  });
  const rs = await api.client.get(`${base}/replicasets/rs`);
  assert.equal((rs.spec as Json).replicas, 1, 'defaulted');
  await api.client.request('PATCH', `${base}/replicasets/rs/scale`, {
    json: { spec: { replicas: 3 } },
    contentType: 'application/merge-patch+json',
  });
  assert.equal(((await api.client.get(`${base}/replicasets/rs`)).spec as Json).replicas, 3);
  const scaled = await api.client.get(`${base}/replicasets/rs`);
  await api.client.request('PUT', `${base}/replicasets/rs/status`, { json: { ...scaled, status: { replicas: 2 } } });
  assert.deepEqual((await api.client.get(`${base}/replicasets/rs`)).status, { replicas: 2 });
  await api.client.request('POST', `${base}/daemonsets`, {
    json: {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'ds' },
      spec: { selector: { matchLabels: { app: 'a' } }, template },
    },
  });
  const ds = await api.client.get(`${base}/daemonsets/ds`);
  assert.equal(((ds.spec as Json).updateStrategy as Json).type, 'RollingUpdate');
});
