// The local API server garbage-collects by ownerReferences, as a real cluster's garbage collector does:
// deleting a Gateway deletes the waypoint objects it owns (and what those own), keeps an object that has
// another owner still present, and keeps everything with `propagationPolicy: Orphan`. Real HTTPS API.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Json } from '../../../src/kube/client.ts';
import { type LocalApi, startLocalApi } from '../../helpers/local-api.ts';

const GW = 'gateway.networking.k8s.io/v1';

async function gateway(api: LocalApi, name: string): Promise<Json> {
  return api.create({
    apiVersion: GW,
    kind: 'Gateway',
    metadata: { name, namespace: 'default' },
    spec: { gatewayClassName: 'ferry-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
  });
}

const ownerRef = (o: Json) => {
  const m = o.metadata as { name: string; uid: string };
  return { apiVersion: String(o.apiVersion), kind: String(o.kind), name: m.name, uid: m.uid };
};

function configMap(name: string, owners: readonly Json[]) {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: 'default', ownerReferences: owners.map(ownerRef) },
    data: {},
  };
}

async function exists(api: LocalApi, apiVersion: string, kind: string, name: string): Promise<boolean> {
  return api.get(apiVersion, kind, 'default', name).then(
    () => true,
    (err: { status?: number }) => {
      if (err.status === 404) return false;
      throw err;
    },
  );
}

test('deleting an owner deletes its dependents, transitively, but not one with another owner left', async (t) => {
  const api = await startLocalApi(t, { preinstallCrds: true });
  const gw = await gateway(api, 'waypoint');
  const other = await gateway(api, 'other');
  const svc = await api.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'waypoint', namespace: 'default', ownerReferences: [ownerRef(gw)] },
    spec: { ports: [{ name: 'mesh', port: 15008 }] },
  });
  await api.create(configMap('owned-by-service', [svc]));
  await api.create(configMap('two-owners', [gw, other]));
  await api.create(configMap('unowned', []));

  await api.remove(GW, 'Gateway', 'default', 'waypoint');
  assert.equal(await exists(api, 'v1', 'Service', 'waypoint'), false, 'the owned Service is collected');
  assert.equal(await exists(api, 'v1', 'ConfigMap', 'owned-by-service'), false, 'and what the Service owned');
  assert.equal(await exists(api, 'v1', 'ConfigMap', 'two-owners'), true, 'another owner is still there');
  assert.equal(await exists(api, 'v1', 'ConfigMap', 'unowned'), true);

  await api.remove(GW, 'Gateway', 'default', 'other');
  assert.equal(await exists(api, 'v1', 'ConfigMap', 'two-owners'), false, 'its last owner went');
});

test('propagationPolicy Orphan leaves the dependents', async (t) => {
  const api = await startLocalApi(t, { preinstallCrds: true });
  const gw = await gateway(api, 'waypoint');
  await api.create(configMap('kept', [gw]));
  await api.remove(GW, 'Gateway', 'default', 'waypoint', { propagationPolicy: 'Orphan' });
  assert.equal(await exists(api, 'v1', 'ConfigMap', 'kept'), true);
});

test('deletecollection takes the dependents too, also when one victim owns another', async (t) => {
  const api = await startLocalApi(t, { preinstallCrds: true });
  const svc = (name: string, owners: readonly Json[]) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default', labels: { batch: 'x' }, ownerReferences: owners.map(ownerRef) },
    spec: { ports: [{ name: 'mesh', port: 15008 }] },
  });
  const a = await api.create(svc('a', []));
  await api.create(svc('b', [a]));
  await api.create(configMap('owned-by-a', [a]));
  await api.client.request('DELETE', '/api/v1/namespaces/default/services?labelSelector=batch%3Dx');
  assert.equal(await exists(api, 'v1', 'Service', 'a'), false);
  assert.equal(await exists(api, 'v1', 'Service', 'b'), false);
  assert.equal(await exists(api, 'v1', 'ConfigMap', 'owned-by-a'), false);
});
