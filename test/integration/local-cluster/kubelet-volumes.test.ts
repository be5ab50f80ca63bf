// The kubelet's volumes against the real local API server: a projected ServiceAccount token by TokenRequest
// (the audience asked, bound to the pod: TokenReview for that audience names the pod, and refuses the token
// for another audience), ConfigMap keys and items as files (updated in place on the next write), Secret data
// decoded, and a missing ConfigMap failing the write naming it (optional ones are skipped).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Json } from '../../../src/kube/client.ts';
import { writePodVolumes } from '../../../src/local-cluster/kubelet/pod-volume-files.ts';
import { podVolumeDir, podVolumes } from '../../../src/local-cluster/kubelet/pod-volumes.ts';
import { startLocalApi } from '../../helpers/local-api.ts';

test('projected token, ConfigMap and Secret volumes are written from the API', async (t) => {
  const api = await startLocalApi(t);
  const stateDir = mkdtempSync(join(tmpdir(), 'ferry-kubelet-vol-'));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } });
  await api.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'wp', namespace: 'demo' } });
  await api.create({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'root', namespace: 'demo' },
    data: { 'root-cert.pem': 'ROOT-1', other: 'x' },
  });
  await api.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'creds', namespace: 'demo' },
    data: { password: Buffer.from('s3cret').toString('base64') },
  });
  const pod = (await api.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'wp-1', namespace: 'demo' },
    spec: {
      serviceAccountName: 'wp',
      containers: [{ name: 'waypoint', image: 'ferry/ferry' }],
      volumes: [
        { name: 'tok', projected: { sources: [{ serviceAccountToken: { audience: 'ferry-ca', path: 'token' } }] } },
        { name: 'root', configMap: { name: 'root', items: [{ key: 'root-cert.pem', path: 'certs/root.pem' }] } },
        { name: 'creds', secret: { secretName: 'creds' } },
        { name: 'maybe', configMap: { name: 'absent', optional: true } },
        { name: 'tmp', emptyDir: {} },
      ],
    },
  })) as { metadata: { uid: string } };
  const uid = pod.metadata.uid;
  const volumes = podVolumes(pod as Json);
  assert.ok(volumes.ok);
  const owner = { uid, namespace: 'demo', name: 'wp-1', serviceAccount: 'wp' };
  const nowMs = Date.now();
  const written = await writePodVolumes(api.client, stateDir, owner, volumes.volumes, nowMs, t.signal);
  assert.ok(written.ok, written.ok ? '' : written.message);
  assert.ok(written.refreshAtMs > nowMs && written.refreshAtMs <= nowMs + 10_000, 'ConfigMaps are read again soon');

  const token = readFileSync(join(podVolumeDir(stateDir, uid, 'tok'), 'token'), 'utf8');
  assert.equal(statSync(join(podVolumeDir(stateDir, uid, 'tok'), 'token')).mode & 0o777, 0o600);
  const review = async (audience: string) =>
    (
      await api.client.request('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
        json: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [audience] } },
      })
    ).status as { authenticated?: boolean; user?: { username?: string; extra?: Record<string, string[]> } };
  const ok = await review('ferry-ca');
  assert.equal(ok.authenticated, true);
  assert.equal(ok.user?.username, 'system:serviceaccount:demo:wp');
  assert.deepEqual(ok.user?.extra?.['authentication.kubernetes.io/pod-name'], ['wp-1']);
  assert.notEqual((await review('another-audience')).authenticated, true);

  assert.equal(readFileSync(join(podVolumeDir(stateDir, uid, 'root'), 'certs/root.pem'), 'utf8'), 'ROOT-1');
  assert.equal(existsSync(join(podVolumeDir(stateDir, uid, 'root'), 'other')), false, 'only the items asked');
  assert.equal(readFileSync(join(podVolumeDir(stateDir, uid, 'creds'), 'password'), 'utf8'), 's3cret');
  assert.ok(statSync(podVolumeDir(stateDir, uid, 'tmp')).isDirectory());

  // A changed ConfigMap reaches the file on the next write (the kubelet's refresh).
  await api.replace({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'root', namespace: 'demo' },
    data: { 'root-cert.pem': 'ROOT-2' },
  });
  const again = await writePodVolumes(api.client, stateDir, owner, volumes.volumes, Date.now(), t.signal);
  assert.ok(again.ok);
  assert.equal(readFileSync(join(podVolumeDir(stateDir, uid, 'root'), 'certs/root.pem'), 'utf8'), 'ROOT-2');

  const missing = podVolumes({ spec: { volumes: [{ name: 'm', configMap: { name: 'absent' } }] } });
  assert.ok(missing.ok);
  const failed = await writePodVolumes(api.client, stateDir, owner, missing.volumes, Date.now(), t.signal);
  assert.deepEqual(failed, { ok: false, message: 'volume m: configMap demo/absent not found' });
});
