// `--ca-token-file` (ztunnel, waypoint): the bearer token for the CA is read from a file at every request,
// as a projected ServiceAccount token that the kubelet rotates must be (charts/ferry). Real CA over gRPC+TLS
// on loopback with node-bound tokens; the file is rewritten between requests.
import assert from 'node:assert/strict';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CertificateAuthority } from '../../src/identity/ca.ts';
import { nodeBoundAuthorizer } from '../../src/identity/ca-authz.ts';
import { CaClient } from '../../src/identity/ca-client.ts';
import { startCaServer } from '../../src/identity/ca-server.ts';
import { caTokenProvider } from '../../src/identity/ca-token.ts';
import { IdentityError } from '../../src/identity/errors.ts';
import { spiffeId } from '../../src/identity/spiffe-id.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { ConfigError } from '../../src/runtime/process-config.ts';
import { loadWaypointConfig } from '../../src/waypoint/config.ts';
import { createZtunnelCertificates } from '../../src/ztunnel/certificates.ts';
import { loadZtunnelConfig } from '../../src/ztunnel/config.ts';

const TD = 'cluster.local';

async function setup(t: { after: (fn: () => unknown) => void }) {
  const ca = await CertificateAuthority.generate({ trustDomain: TD });
  const authorizer = nodeBoundAuthorizer({
    tokens: new Map([
      ['projected-token-1', 'node-a'],
      ['projected-token-2', 'node-a'],
    ]),
    mayHold: () => true,
  });
  const server = await startCaServer({ ca, authorizer });
  t.after(() => server.close());
  const dir = await mkdtemp(join(tmpdir(), 'ferry-ca-token-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const root = join(dir, 'root-cert.pem');
  await writeFile(root, ca.trustBundlePem().join(''));
  return { ca, server, dir, root, tokenFile: join(dir, 'token') };
}

test('the ztunnel built from --ca-token-file gets certificates with the token in the file', async (t) => {
  const { server, root, tokenFile } = await setup(t);
  await writeFile(tokenFile, 'projected-token-1\n'); // the kubelet writes no newline, but a hand-made file may
  const config = loadZtunnelConfig(
    { 'xds-address': '127.0.0.1:1', 'ca-address': server.address, 'ca-root': root, 'ca-token-file': tokenFile },
    {},
  );
  assert.deepEqual(config.ca.kind === 'grpc' ? config.ca.token : null, { kind: 'file', path: tokenFile });
  const certs = await createZtunnelCertificates(config.ca, TD, silentLogger);
  t.after(() => certs.close());
  const web = spiffeId(TD, 'shop', 'web');
  assert.deepEqual((await certs.getCertificate(web)).identity, web);
});

test('the file is read again at every request: a rotated token is used, a bad or missing one refused', async (t) => {
  const { ca, server, tokenFile } = await setup(t);
  const client = await CaClient.create({
    address: server.address,
    roots: { pem: ca.trustBundlePem() },
    timeoutMs: 5000,
    token: caTokenProvider({ kind: 'file', path: tokenFile }),
  });
  t.after(() => client.close());
  const fetchError = async (sa: string): Promise<IdentityError> => {
    const err = await client.fetch(spiffeId(TD, 'shop', sa)).then(
      () => assert.fail(`fetch of ${sa} succeeded`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof IdentityError, String(err));
    return err;
  };

  await writeFile(tokenFile, 'projected-token-1');
  assert.equal((await client.fetch(spiffeId(TD, 'shop', 'a'))).identity.serviceAccount, 'a');
  await writeFile(tokenFile, 'projected-token-2'); // rotated by the kubelet
  assert.equal((await client.fetch(spiffeId(TD, 'shop', 'b'))).identity.serviceAccount, 'b');
  await writeFile(tokenFile, 'expired-or-foreign');
  assert.match((await fetchError('c')).message, /UNAUTHENTICATED/);
  await writeFile(tokenFile, '  \n');
  const empty = await fetchError('d');
  assert.equal(empty.code, 'FERRY_CA_TOKEN_UNREADABLE');
  assert.equal(empty.message, `CA token file ${tokenFile} is empty`);
  await unlink(tokenFile);
  const missing = await fetchError('e');
  assert.equal(missing.code, 'FERRY_CA_TOKEN_UNREADABLE');
  assert.equal(missing.message, `CA token file ${tokenFile} cannot be read (ENOENT)`);
  await writeFile(tokenFile, 'projected-token-1');
  assert.equal((await client.fetch(spiffeId(TD, 'shop', 'f'))).identity.serviceAccount, 'f');
});

test('--ca-token and --ca-token-file together are refused; flags win over the environment', () => {
  const base = { 'xds-address': '127.0.0.1:1', 'ca-address': '127.0.0.1:2', 'ca-root': '/r.pem' };
  assert.throws(
    () => loadZtunnelConfig({ ...base, 'ca-token': 'x', 'ca-token-file': '/t' }, {}),
    (e: unknown) => e instanceof ConfigError && /give one of them, not both/.test(e.message),
  );
  const fromEnv = loadZtunnelConfig(base, { FERRY_CA_TOKEN_FILE: '/var/run/t' });
  assert.deepEqual(fromEnv.ca.kind === 'grpc' ? fromEnv.ca.token : null, { kind: 'file', path: '/var/run/t' });
  const flagWins = loadZtunnelConfig({ ...base, 'ca-token': 'x' }, { FERRY_CA_TOKEN_FILE: '/var/run/t' });
  assert.deepEqual(flagWins.ca.kind === 'grpc' ? flagWins.ca.token : null, { kind: 'value', value: 'x' });
  const waypoint = loadWaypointConfig(
    {
      waypoint: 'shop/waypoint',
      'xds-address': '127.0.0.1:1',
      'ca-address': '127.0.0.1:2',
      'ca-root': '/r.pem',
      'ca-token-file': '/t',
    },
    {},
  );
  assert.deepEqual(waypoint.ca.kind === 'grpc' ? waypoint.ca.token : null, { kind: 'file', path: '/t' });
});
