// Issue 9 §2: the local controller's durable state (src/local-cluster/controller/state-store.ts) on a real
// filesystem. A writer killed with SIGKILL at random moments never loses an acknowledged commit; torn temp
// files are ignored and removed; readers see a whole old or a whole new file, never a mix; a damaged,
// truncated or no-longer-valid file is an error naming it (the controller refuses to start) rather than an
// empty mesh; applies, deletes and labels come back after a restart exactly, even if the manifests changed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ManifestSource } from '../../src/controller/sources/manifest-source.ts';
import type { ClusterState } from '../../src/controller/sources/types.ts';
import { LocalControllerError } from '../../src/local-cluster/controller/errors.ts';
import { LabeledSource } from '../../src/local-cluster/controller/labeled-source.ts';
import { startLocalController } from '../../src/local-cluster/controller/local-controller.ts';
import { writeMeshConfig } from '../../src/local-cluster/controller/mesh-files.ts';
import { ControllerStateStore, STATE_FILE } from '../../src/local-cluster/controller/state-store.ts';
import { writeFileDurable } from '../../src/runtime/durable-file.ts';
import { silentLogger } from '../../src/runtime/logger.ts';

const WRITER = fileURLToPath(new URL('../helpers/state-store-writer.ts', import.meta.url));

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-state-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const POLICIES = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: demo}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-client, namespace: demo}
spec:
  selector: {matchLabels: {app: echo}}
  action: DENY
  rules: [{from: [{source: {principals: [cluster.local/ns/demo/sa/client]}}]}]
`;
const NAMESPACE = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n';

/** A manifest source over the store in `dir`, started; its latest state. */
async function openSource(t: TestContext, dir: string, paths: readonly string[]) {
  const store = await ControllerStateStore.open(dir);
  const source = new LabeledSource(new ManifestSource({ paths, store: store.objectStore() }), store);
  let latest: ClusterState | null = null;
  await source.start((s) => {
    latest = s;
  });
  t.after(() => source.close());
  return { store, source, state: () => latest as ClusterState | null };
}

const refs = (s: ClusterState | null): string[] =>
  [...(s?.namespaces ?? []), ...(s?.peerAuthentications ?? []), ...(s?.authorizationPolicies ?? [])]
    .map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`)
    .sort();

test('apply, delete and label come back after a restart exactly, even when the manifest files changed', async (t) => {
  const dir = tempDir(t);
  const base = join(dir, 'base.yaml');
  const policies = join(dir, 'policies.yaml');
  writeFileSync(base, NAMESPACE);
  writeFileSync(policies, POLICIES);
  const first = await openSource(t, dir, [base]);
  assert.equal(first.store.restored, null, 'first start: nothing restored');
  const applied = await first.source.apply([policies]);
  assert.equal(applied.changed.length, 2);
  writeFileSync(join(dir, 'strict-only.yaml'), POLICIES.split('---')[0] ?? '');
  await first.source.delete([join(dir, 'strict-only.yaml')]);
  await first.source.label({ kind: 'Namespace', namespace: '', name: 'demo' }, [
    { key: 'istio.io/dataplane-mode', value: 'ambient' },
  ]);
  const before = first.source.state();
  await first.source.close();

  // The files change or go away while the controller is down: the restart must not read them.
  writeFileSync(base, 'apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n');
  unlinkSync(policies);
  const second = await openSource(t, dir, [base]);
  assert.notEqual(second.store.restored, null);
  assert.deepEqual(refs(second.state()), refs(before));
  assert.deepEqual(refs(second.state()), ['AuthorizationPolicy/demo/deny-client', 'Namespace//demo']);
  const ns = second.state()?.namespaces.find((n) => n.metadata.name === 'demo');
  assert.equal(ns?.metadata.labels.get('istio.io/dataplane-mode'), 'ambient', 'the label survived');
  const seq = (s: ClusterState | null) => s?.authorizationPolicies.map((p) => p.metadata.sequence);
  assert.deepEqual(seq(second.state()), seq(before), '"oldest wins" order kept');
});

test('a failed write applies nothing and says so (FERRY_LOCAL_STATE_WRITE_FAILED)', async (t) => {
  const dir = tempDir(t);
  const stateDir = join(dir, 'state');
  const policies = join(dir, 'policies.yaml');
  writeFileSync(policies, POLICIES);
  const { source, state } = await openSource(t, stateDir, []);
  rmSync(stateDir, { recursive: true }); // the temp file cannot be created any more
  await assert.rejects(source.apply([policies]), (err: unknown) => {
    assert.ok(err instanceof LocalControllerError);
    assert.equal(err.code, 'FERRY_LOCAL_STATE_WRITE_FAILED');
    assert.match(err.message, new RegExp(STATE_FILE));
    return true;
  });
  assert.deepEqual(refs(source.state()), [], 'not applied in memory either');
  assert.deepEqual(refs(state()), [], 'nothing published');
});

test('kill -9 at random moments: every acknowledged commit survives, at most the one in flight is extra', async (t) => {
  const dir = tempDir(t);
  let acked = 0;
  for (let round = 0; round < 6; round++) {
    const child = spawn(process.execPath, [WRITER, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const killAfter = 2 + Math.floor(Math.random() * 20);
    // Killed at a random point after `killAfter` acks: mid-write, mid-fsync or between commits.
    await new Promise<void>((resolve) => {
      const check = () => {
        if ((out.match(/acked/g) ?? []).length >= killAfter || child.exitCode !== null) {
          setTimeout(() => resolve(), Math.random() * 5);
          child.stdout.off('data', check);
        }
      };
      child.stdout.on('data', check);
      child.once('close', () => resolve());
    });
    child.kill('SIGKILL');
    await closed;
    assert.equal(child.signalCode, 'SIGKILL', err);
    const last = Math.max(acked, ...[...out.matchAll(/acked (\d+)/g)].map((m) => Number(m[1])));
    const store = await ControllerStateStore.open(dir);
    const n = Number(store.current.labels.get('Namespace/counter')?.n);
    assert.ok(n === last || n === last + 1, `round ${round}: acknowledged ${last}, restored ${n}`);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
      'torn temp files removed on open',
    );
    acked = n;
  }
});

test('a torn temp file next to the state is ignored and removed', async (t) => {
  const dir = tempDir(t);
  const { source } = await openSource(t, dir, []);
  await source.label({ kind: 'Namespace', namespace: '', name: 'demo' }, [{ key: 'a', value: '1' }]);
  const good = readFileSync(join(dir, STATE_FILE), 'utf8');
  const torn = join(dir, `${STATE_FILE}.4242-deadbeef.tmp`);
  writeFileSync(torn, good.slice(0, good.length / 2)); // a write that died before its rename
  const store = await ControllerStateStore.open(dir);
  assert.deepEqual(store.restored?.labels.get('Namespace/demo'), { a: '1' });
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
  );
  assert.equal(readFileSync(join(dir, STATE_FILE), 'utf8'), good, 'the state file itself untouched');
});

test('rename atomicity: a reader sees the whole old or the whole new file, never a mix', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'f');
  const a = 'a'.repeat(2 * 1024 * 1024);
  const b = 'b'.repeat(3 * 1024 * 1024);
  await writeFileDurable(file, a);
  let writing = true;
  let reads = 0;
  const reader = (async () => {
    while (writing) {
      const text = await readFile(file, 'utf8');
      assert.ok(text === a || text === b, `a mixed or torn read of ${text.length} bytes`);
      reads++;
    }
  })();
  for (let i = 0; i < 20; i++) await writeFileDurable(file, i % 2 === 0 ? b : a);
  writing = false;
  await reader;
  assert.ok(reads > 0);
  assert.deepEqual(readdirSync(dir), ['f'], 'no temp file left');
});

/** A state file whose header checksum matches `body` (to test what parsing checks after the checksum). */
function stateText(body: unknown): string {
  const text = JSON.stringify(body);
  const sha256 = createHash('sha256').update(text).digest('hex');
  return `${JSON.stringify({ format: 'ferry-controller-state', version: 1, sha256 })}\n${text}\n`;
}

const BAD_FILES: readonly { name: string; damage: (good: string) => string; error: RegExp }[] = [
  { name: 'a flipped byte', damage: (g) => g.replace('deny-client', 'deny-cliemt'), error: /checksum mismatch/ },
  { name: 'truncated in the body', damage: (g) => g.slice(0, Math.floor(g.length * 0.7)), error: /checksum/ },
  { name: 'truncated in the header', damage: (g) => g.slice(0, 20), error: /truncated/ },
  { name: 'empty', damage: () => '', error: /truncated/ },
  { name: 'not ours', damage: () => '{"hello": 1}\n{}\n', error: /not a ferry-controller-state file/ },
  {
    name: 'a newer version',
    damage: (g) => g.replace('"version":1', '"version":9'),
    error: /version 9 \(this controller reads 1\)/,
  },
  {
    name: 'an object this version no longer accepts',
    damage: () =>
      stateText({
        objects: [
          {
            file: '/m.yaml',
            line: 1,
            sequence: 0,
            document: {
              apiVersion: 'security.istio.io/v1',
              kind: 'AuthorizationPolicy',
              metadata: { name: 'x' },
              spec: { action: 'MAYBE' },
            },
          },
        ],
        labels: {},
        enrolled: {},
      }),
    error: /objects\[0\] is no longer accepted: .*AuthorizationPolicy/,
  },
  {
    name: 'a malformed enrolled entry',
    damage: () => stateText({ objects: [], labels: {}, enrolled: { 'node-0': { uid: { netnsPath: 1 } } } }),
    error: /enrolled\["node-0"\]\["uid"\] is malformed/,
  },
];

test('a damaged state file is an error naming the file, never an empty mesh', async (t) => {
  const dir = tempDir(t);
  const policies = join(dir, 'policies.yaml');
  writeFileSync(policies, POLICIES);
  const { source } = await openSource(t, dir, [policies]);
  await source.close();
  const file = join(dir, STATE_FILE);
  const good = readFileSync(file, 'utf8');
  assert.match(good, /deny-client/);
  for (const bad of BAD_FILES) {
    writeFileSync(file, bad.damage(good));
    await assert.rejects(ControllerStateStore.open(dir), (err: unknown) => {
      assert.ok(err instanceof LocalControllerError, `${bad.name}: ${String(err)}`);
      assert.equal(err.code, 'FERRY_LOCAL_BAD_STATE', bad.name);
      assert.ok(err.message.startsWith(`${file}: `), `${bad.name}: names the file: ${err.message}`);
      assert.match(err.message, bad.error, bad.name);
      return true;
    });
  }
});

test('the controller refuses to start from a damaged state file (before it listens)', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'm.yaml'), NAMESPACE);
  await writeMeshConfig(dir, {
    cluster: 'damaged',
    trustDomain: 'cluster.local',
    manifests: [join(dir, 'm.yaml')],
    controller: { xds: '127.0.0.1:0', ca: '127.0.0.1:0', admin: '127.0.0.1:0' },
    nodes: [],
  });
  const controller = await startLocalController(dir, silentLogger);
  await controller.close();
  const file = join(dir, STATE_FILE);
  assert.match(readFileSync(file, 'utf8'), /"demo"/, 'the first start committed the manifests');
  writeFileSync(file, readFileSync(file, 'utf8').replace('"demo"', '"dema"'));
  await assert.rejects(startLocalController(dir, silentLogger), (err: unknown) => {
    assert.ok(err instanceof LocalControllerError);
    assert.equal(err.code, 'FERRY_LOCAL_BAD_STATE');
    assert.match(err.message, new RegExp(`^${file}: checksum mismatch`));
    return true;
  });
});
