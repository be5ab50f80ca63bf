// `ferry controller --source kubernetes` with `--ca-secret` and `--tls-dns-names`, against the local API
// server (real HTTPS): two replicas started together end with one root, stored in the Secret (Istio's
// cacerts keys), and each issues workload certificates and serves xDS and the CA with certificates that
// verify under that root for the chart's Service name; a real ztunnel xDS source given the root as
// `--xds-root` syncs from either replica. A Secret without the CA keys stops the controller with a code
// naming it. Service hostnames follow `--cluster-domain`.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect } from 'node:tls';
import { type KubernetesController, startKubernetesController } from '../../src/controller/kubernetes-controller.ts';
import { CaClient } from '../../src/identity/ca-client.ts';
import { spiffeId } from '../../src/identity/spiffe-id.ts';
import type { Json } from '../../src/kube/client.ts';
import { MeshStore } from '../../src/mesh/mesh-store.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { ConfigXdsSource } from '../../src/ztunnel/config-xds-source.ts';
import { type LocalApi, startLocalApi } from '../helpers/local-api.ts';
import { CapturingLogger } from '../helpers/xds-events.ts';

const NS = 'ferry-system';
const SERVICE_NAME = 'ferry-controller.ferry-system.svc';

async function replica(t: import('node:test').TestContext, api: LocalApi, identity: string, clusterDomain?: string) {
  const c = await startKubernetesController({
    kube: { kubeconfigPath: api.kubeconfigPath },
    log: silentLogger,
    ...(clusterDomain === undefined ? {} : { clusterDomain }),
    namespace: NS,
    tlsDnsNames: [SERVICE_NAME, `${SERVICE_NAME}.cluster.local`],
    ca: { secretName: 'ferry-ca', nodeTokens: new Map([['node-a-token', 'node-a']]) },
    lease: { namespace: NS, identity, durationSeconds: 2, retryMs: 200 },
  });
  t.after(() => c.close());
  return c;
}

/** The certificate a TLS server presents when dialed as `servername` (verified against `rootPem`). */
async function servingCertificate(address: string, rootPem: string, servername: string): Promise<X509Certificate> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')),
    Number(address.slice(address.lastIndexOf(':') + 1)),
  ];
  const socket = connect({ host, port, servername, ca: rootPem, ALPNProtocols: ['h2'] });
  try {
    await once(socket, 'secureConnect');
    return new X509Certificate(socket.getPeerCertificate().raw);
  } finally {
    socket.destroy();
  }
}

async function ztunnelSyncs(
  t: import('node:test').TestContext,
  c: KubernetesController,
  rootPath: string,
  store = new MeshStore(),
) {
  const source = new ConfigXdsSource(
    { address: c.xds.address, rootPath, ip: '127.0.0.1', node: 'node-a', serverName: SERVICE_NAME },
    store,
    new CapturingLogger(),
  );
  t.after(() => source.close());
  return source.load();
}

test('two replicas with --ca-secret share one root and serve xDS and the CA under it', async (t) => {
  const api = await startLocalApi(t, { preinstallCrds: true });
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } });
  const pod = await api.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-0', namespace: 'demo' },
    spec: { nodeName: 'node-a', serviceAccountName: 'web', containers: [{ name: 'app', image: 'echo' }] },
  });
  await api.writeStatus({ ...pod, status: { phase: 'Running', podIP: '10.1.0.7' } });
  const [a, b] = await Promise.all([replica(t, api, 'replica-a'), replica(t, api, 'replica-b')]);

  const secret = await api.get('v1', 'Secret', NS, 'ferry-ca');
  const data = secret.data as Record<string, string>;
  assert.deepEqual(Object.keys(data).sort(), ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem']);
  const rootPem = Buffer.from(data['root-cert.pem'] as string, 'base64').toString('utf8');
  const root = new X509Certificate(rootPem);
  assert.deepEqual(a.trustBundlePem(), [root.toString()]);
  assert.deepEqual(b.trustBundlePem(), [root.toString()]);

  const dir = await mkdtemp(join(tmpdir(), 'ferry-ca-secret-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const rootPath = join(dir, 'root-cert.pem');
  await writeFile(rootPath, rootPem);
  for (const c of [a, b]) {
    for (const address of [c.xds.address, c.ca.address]) {
      const cert = await servingCertificate(address, rootPem, SERVICE_NAME);
      assert.ok(cert.verify(root.publicKey), `${address}: signed by the shared root`);
      assert.match(cert.subjectAltName ?? '', /DNS:ferry-controller\.ferry-system\.svc\.cluster\.local/);
    }
    const loaded = await ztunnelSyncs(t, c, rootPath);
    assert.equal(loaded.ok, true, `a ztunnel with --xds-root syncs from ${c.xds.address}`);
    // A workload certificate, as node-a's ztunnel asks for it, issued under the shared root.
    const client = await CaClient.create({ address: c.ca.address, roots: { pem: [rootPem] }, token: 'node-a-token' });
    t.after(() => client.close());
    const svid = await client.fetch(spiffeId('cluster.local', 'demo', 'web'));
    assert.ok(new X509Certificate(svid.certChainPem[0] as string).verify(root.publicKey), `${c.ca.address}: SVID`);
  }
  await assert.rejects(servingCertificate(a.xds.address, rootPem, 'other.ferry-system.svc'), {
    code: 'ERR_TLS_CERT_ALTNAME_INVALID',
  });
});

test('a ztunnel with another root never takes config from the TLS xDS server', async (t) => {
  const api = await startLocalApi(t, { preinstallCrds: true });
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  const c = await replica(t, api, 'replica-a');
  const stranger = await startLocalApi(t, { preinstallCrds: true });
  await stranger.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  const other = await replica(t, stranger, 'replica-x');
  const dir = await mkdtemp(join(tmpdir(), 'ferry-ca-secret-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const rootPath = join(dir, 'stranger.pem');
  await writeFile(rootPath, other.trustBundlePem().join(''));
  const log = new CapturingLogger();
  const store = new MeshStore();
  const source = new ConfigXdsSource(
    { address: c.xds.address, rootPath, ip: '127.0.0.1', node: 'node-a', serverName: SERVICE_NAME },
    store,
    log,
  );
  t.after(() => source.close());
  void source.load();
  await log.events.waitFor((l) => l.fields.code === 'FERRY_XDS_STREAM_FAILED');
  assert.equal(source.loads, 0);
});

test('a --ca-secret Secret without the CA keys stops the controller, naming it', async (t) => {
  const api = await startLocalApi(t, { preinstallCrds: true });
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  await api.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'ferry-ca', namespace: NS },
    data: { 'root-cert.pem': b64('not a certificate') } satisfies Json,
  });
  await assert.rejects(replica(t, api, 'replica-a'), (err: { code?: string; message: string }) => {
    assert.equal(err.code, 'FERRY_CONTROLLER_CA_SECRET_INVALID');
    assert.match(err.message, /Secret ferry-system\/ferry-ca: no data key ca-cert\.pem/);
    return true;
  });
});

test('--cluster-domain: Services reach the ztunnel as <svc>.<ns>.svc.<cluster domain>', async (t) => {
  const api = await startLocalApi(t, { preinstallCrds: true });
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } });
  await api.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace: 'demo' },
    spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80 }] },
  });
  const c = await replica(t, api, 'replica-a', 'corp.example');
  const dir = await mkdtemp(join(tmpdir(), 'ferry-ca-secret-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const rootPath = join(dir, 'root-cert.pem');
  await writeFile(rootPath, c.trustBundlePem().join(''));
  const store = new MeshStore();
  assert.equal((await ztunnelSyncs(t, c, rootPath, store)).ok, true);
  assert.deepEqual(
    store.view.services.map((s) => s.hostname),
    ['echo.demo.svc.corp.example'],
  );
});
