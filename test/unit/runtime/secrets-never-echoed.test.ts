// Issue 9 §5: read-only dumps never carry key material, and an error never echoes a file's content:
// redactSecrets (the last guard of /config_dump), a manifest that is a private key, a mesh.json that is not
// JSON (it holds the CA tokens), and a stale admin socket replaced while a live one is refused.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseManifestText } from '../../../src/controller/sources/manifest-source.ts';
import { formatDiagnostic } from '../../../src/controller/sources/types.ts';
import { readMeshConfig } from '../../../src/local-cluster/controller/mesh-files.ts';
import { listenAdminSocket } from '../../../src/runtime/admin-socket.ts';
import { REDACTED, redactSecrets } from '../../../src/runtime/redact.ts';

const PEM = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49SECRET\n-----END PRIVATE KEY-----\n';

test('redactSecrets: key-named fields and PEM private keys, at any depth; the rest untouched', () => {
  const input = {
    identity: 'spiffe://cluster.local/ns/a/sa/b',
    certChain: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    privateKey: 'raw',
    nodes: [{ name: 'node-1', token: 'tok', caToken: 'tok2', bearer_token: 'x', password: 'p' }],
    deep: { list: [[{ blob: PEM }]], map: new Map([['ca_key', 'k']]) },
    bytes: new Uint8Array([1, 2, 3]),
    emptyToken: null,
    count: 3,
  };
  assert.deepEqual(redactSecrets(input), {
    identity: 'spiffe://cluster.local/ns/a/sa/b',
    certChain: input.certChain,
    privateKey: REDACTED,
    nodes: [{ name: 'node-1', token: REDACTED, caToken: REDACTED, bearer_token: REDACTED, password: REDACTED }],
    deep: { list: [[{ blob: REDACTED }]], map: { ca_key: REDACTED } },
    bytes: REDACTED,
    emptyToken: null,
    count: 3,
  });
  assert.equal(input.privateKey, 'raw', 'the input is not mutated');
});

test('a manifest that is a private key is reported by shape, never by content', () => {
  const r = parseManifestText(PEM, '/root/key.pem', { defaultNamespace: 'default', firstSequence: 0 });
  const lines = r.diagnostics.map(formatDiagnostic).join('\n');
  assert.match(lines, /not a Kubernetes object \(got a string of \d+ characters\)/);
  assert.doesNotMatch(lines, /PRIVATE|MIGH|SECRET/);
});

test('a mesh.json that is not JSON is named, its content (tokens) never quoted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-noecho-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'mesh.json'), '{"nodes":[{"token":"SUPERSECRETTOKEN" oops');
  await assert.rejects(readMeshConfig(dir), (err: Error) => {
    assert.match(err.message, /mesh\.json: not valid JSON/);
    assert.doesNotMatch(err.message, /SUPERSECRET|oops/);
    assert.equal(err.cause, undefined);
    return true;
  });
});

test('admin socket: created 0600, a stale file is replaced, a live socket or a regular file is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-adminsock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'a.sock');
  const first = net.createServer();
  await listenAdminSocket(first, path);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  await assert.rejects(listenAdminSocket(net.createServer(), path), /in use/);
  first.close();
  writeFileSync(join(dir, 'file'), 'x');
  await assert.rejects(listenAdminSocket(net.createServer(), join(dir, 'file')), /not a socket/);
  // A process killed with SIGKILL leaves its socket file behind: the next one takes the path over.
  const crashed = spawn(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`,
  ]);
  await once(crashed.stdout, 'data');
  crashed.kill('SIGKILL');
  await once(crashed, 'exit');
  assert.ok(statSync(path).isSocket(), 'the stale socket file is still there');
  const second = net.createServer();
  await listenAdminSocket(second, path);
  t.after(() => second.close());
  assert.equal(statSync(path).mode & 0o777, 0o600);
});
