// Client-side apply through the local API server (real HTTPS): discovery maps kinds to paths (CRD kinds
// included once their CRD exists), apply creates, then reports configured or unchanged, keeps what
// controllers wrote (status, a Service's clusterIP), label changes set and remove, delete is idempotent, and
// bad objects or unserved kinds are refused with errors naming them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyObject, asManifestObject, deleteObject, patchLabels } from '../../src/kube/apply.ts';
import { KubeError } from '../../src/kube/errors.ts';
import { RestMapper } from '../../src/kube/rest-mapper.ts';
import { startLocalApi } from '../helpers/local-api.ts';

const svc = (port: number) =>
  asManifestObject(
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo', namespace: 'demo', labels: { app: 'echo' } },
      spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port, targetPort: 8080 }] },
    },
    'svc.yaml',
  );

test('apply creates, configures and reports unchanged; what the server set is kept', async (t) => {
  const api = await startLocalApi(t);
  const mapper = await RestMapper.discover(api.client);
  assert.equal(mapper.pathFor({ apiVersion: 'v1', kind: 'Namespace', name: 'demo' }), '/api/v1/namespaces/demo');
  assert.equal(
    mapper.pathFor({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'demo' }),
    '/apis/apps/v1/namespaces/demo/deployments',
  );
  const ns = asManifestObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } }, 'ns.yaml');
  assert.equal(await applyObject(api.client, mapper, ns), 'created');
  assert.equal(await applyObject(api.client, mapper, svc(80)), 'created');
  const first = await api.get('v1', 'Service', 'demo', 'echo');
  const clusterIp = (first.spec as { clusterIP: string }).clusterIP;
  assert.match(clusterIp, /^\d+\.\d+\.\d+\.\d+$/);
  assert.equal(await applyObject(api.client, mapper, svc(80)), 'unchanged');
  assert.equal(await applyObject(api.client, mapper, svc(81)), 'configured');
  const after = await api.get('v1', 'Service', 'demo', 'echo');
  assert.equal((after.spec as { clusterIP: string }).clusterIP, clusterIp, 'the allocated clusterIP is kept');
  assert.equal((after.spec as { ports: { port: number }[] }).ports[0]?.port, 81);

  await patchLabels(
    api.client,
    mapper,
    { apiVersion: 'v1', kind: 'Namespace', name: 'demo' },
    new Map([['istio.io/dataplane-mode', 'ambient']]),
  );
  let live = await api.get('v1', 'Namespace', '', 'demo');
  assert.equal((live.metadata as { labels: Record<string, string> }).labels['istio.io/dataplane-mode'], 'ambient');
  await patchLabels(
    api.client,
    mapper,
    { apiVersion: 'v1', kind: 'Namespace', name: 'demo' },
    new Map([['istio.io/dataplane-mode', null]]),
  );
  live = await api.get('v1', 'Namespace', '', 'demo');
  assert.equal((live.metadata as { labels?: Record<string, string> }).labels?.['istio.io/dataplane-mode'], undefined);

  assert.equal(await deleteObject(api.client, mapper, svc(81)), true);
  assert.equal(await deleteObject(api.client, mapper, svc(81)), false);
});

test('a kind without its CRD is refused by name; a CRD installed later is served after rediscovery', async (t) => {
  const api = await startLocalApi(t);
  const route = asManifestObject(
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'r', namespace: 'default' },
      spec: { parentRefs: [{ group: '', kind: 'Service', name: 'echo' }] },
    },
    'route.yaml',
  );
  const before = await RestMapper.discover(api.client);
  await assert.rejects(applyObject(api.client, before, route), (err: unknown) => {
    assert.ok(err instanceof KubeError);
    assert.equal(err.code, 'FERRY_KUBE_KIND_NOT_SERVED');
    assert.match(err.message, /HTTPRoute in gateway\.networking\.k8s\.io\/v1/);
    return true;
  });
  await api.installCrd('HTTPRoute');
  const after = await RestMapper.discover(api.client);
  assert.equal(await applyObject(api.client, after, route), 'created');
});

test('objects without apiVersion, kind or name are refused naming the file and field', () => {
  const cases: [unknown, RegExp][] = [
    ['text', /f\.yaml: the document is not an object/],
    [{ kind: 'Pod', metadata: { name: 'a' } }, /f\.yaml: apiVersion is missing/],
    [{ apiVersion: 'v1', metadata: { name: 'a' } }, /f\.yaml: kind is missing/],
    [{ apiVersion: 'v1', kind: 'Pod', metadata: {} }, /f\.yaml: metadata\.name is missing/],
    [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', namespace: 3 } }, /metadata\.namespace is not a string/],
  ];
  for (const [value, message] of cases) {
    assert.throws(
      () => asManifestObject(value, 'f.yaml'),
      (err: unknown) => {
        assert.ok(err instanceof KubeError);
        assert.equal(err.code, 'FERRY_KUBE_BAD_OBJECT');
        assert.match(err.message, message);
        return true;
      },
    );
  }
});
