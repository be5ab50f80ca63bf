// `ferry waypoint --xds-root`: the waypoint verifies the controller's xDS server over TLS, as the chart
// runs it (charts/ferry: xDS on 15010 with a serving certificate from Ferry's CA). Real gRPC + TLS on loopback.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startXdsServer } from '../../src/controller/xds-server.ts';
import { createServingCertificate, generateP256KeyPair, privateKeyToPem } from '../../src/identity/x509.ts';
import { ConfigError } from '../../src/runtime/process-config.ts';
import { loadWaypointConfig } from '../../src/waypoint/config.ts';
import { readXdsRoot, WaypointXdsSource } from '../../src/waypoint/config-xds-source.ts';
import { service, workload } from '../helpers/mesh-builders.ts';
import { createTestPki, type TestPki } from '../helpers/test-pki.ts';
import { CapturingLogger } from '../helpers/xds-events.ts';

async function servingTls(pki: TestPki) {
  const keys = await generateP256KeyPair();
  const now = Date.now();
  const cert = await createServingCertificate({
    subjectPublicKey: keys.publicKey,
    issuerCertificate: pki.rootCert,
    issuerKey: pki.rootKeys.privateKey,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3600_000),
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  return { certChainPem: cert.toString('pem'), keyPem: await privateKeyToPem(keys.privateKey) };
}

test('a waypoint with --xds-root syncs over TLS; with another root it never takes a config', async (t) => {
  const pki = await createTestPki();
  const server = await startXdsServer({ tls: await servingTls(pki) });
  t.after(() => server.close());
  server.publish({ workloads: [workload('w1', '10.0.0.1')], services: [service('svc', '10.96.0.1')], policies: [] });
  server.publishL7([]);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-wp-xds-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const rootPath = join(dir, 'root-cert.pem');
  await writeFile(rootPath, pki.rootPem);

  const config = loadWaypointConfig(
    { waypoint: 'shop/waypoint', 'xds-address': server.address, 'xds-root': rootPath },
    {},
  );
  assert.deepEqual(config.source, { kind: 'xds', address: server.address, rootPath });
  const source = new WaypointXdsSource({
    address: server.address,
    tls: { rootCertPem: await readXdsRoot(rootPath) },
    waypoint: config.waypoint,
    node: 'node-a',
    log: new CapturingLogger(),
  });
  t.after(() => source.close());
  await source.whenSynced();
  assert.deepEqual(
    source.current().mesh.workloads.map((w) => w.name),
    ['w1'],
  );

  const strangerRoot = join(dir, 'stranger.pem');
  await writeFile(strangerRoot, (await createTestPki()).rootPem);
  const log = new CapturingLogger();
  const refused = new WaypointXdsSource({
    address: server.address,
    tls: { rootCertPem: await readXdsRoot(strangerRoot) },
    waypoint: config.waypoint,
    node: 'node-b',
    log,
  });
  t.after(() => refused.close());
  refused.whenSynced().catch(() => {}); // rejects when closed unsynced, as it must here
  await log.events.waitFor((l) => l.fields.code === 'FERRY_XDS_STREAM_FAILED');
  assert.equal(refused.current().mesh.workloads.length, 0);
});

test('--xds-root: a missing or non-PEM file is refused naming it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-wp-xds-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await assert.rejects(readXdsRoot(join(dir, 'nope.pem')), (e: unknown) => {
    return e instanceof ConfigError && e.message === `--xds-root: ${join(dir, 'nope.pem')} cannot be read (ENOENT)`;
  });
  const junk = join(dir, 'junk.pem');
  await writeFile(junk, 'not a certificate');
  await assert.rejects(readXdsRoot(junk), /holds no PEM certificate/);
  const plain = loadWaypointConfig({ waypoint: 'shop/waypoint', 'xds-address': '127.0.0.1:1' }, {});
  assert.deepEqual(plain.source, { kind: 'xds', address: '127.0.0.1:1', rootPath: null });
});
