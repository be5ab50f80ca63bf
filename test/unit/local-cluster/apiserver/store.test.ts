// biome-ignore-all lint/suspicious/noExplicitAny: fixtures are JSON documents read by path in assertions
// The object store's resourceVersions, bounded watch history (410 for a too-old version), and the
// write-ahead log's replay: a torn tail is cut off, damage elsewhere stops the start naming file and offset.
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ObjectStore } from '../../../../src/local-cluster/apiserver/store.ts';
import { decodeRecords, WriteAheadLog } from '../../../../src/local-cluster/apiserver/wal.ts';
import { silentLogger } from '../../../../src/runtime/logger.ts';

async function openStore(dir: string, historyLimit = 100, compactBytes = 1 << 30): Promise<ObjectStore> {
  const store = new ObjectStore({ historyLimit, compactBytes });
  const { wal, contents } = await WriteAheadLog.open(dir, silentLogger);
  store.restore(contents.snapshot, contents.records, wal, dir);
  return store;
}

const cm = (name: string, v: number) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'd' },
  data: { v },
});

test('store: one monotonic resourceVersion per changed object, events in order, history bounded with 410 beyond it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await openStore(dir, 10);
  t.after(() => store.close());
  const seen: number[] = [];
  store.subscribe('/configmaps', (e) => seen.push(e.rv));
  for (let i = 0; i < 50; i++) await store.commit([{ op: 'put', skey: '/configmaps', object: cm(`c${i % 5}`, i) }]);
  assert.equal(store.resourceVersion, 50);
  assert.deepEqual(
    seen,
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
  assert.equal(
    store.get('/configmaps', 'd', 'c4')?.metadata &&
      (store.get('/configmaps', 'd', 'c4') as any).metadata.resourceVersion,
    '50',
  );
  // History keeps at least the last 10 events: watching from 45 replays 46..50; from 1 it is gone.
  const recent = store.eventsSince('/configmaps', 45);
  assert.ok(Array.isArray(recent));
  assert.deepEqual(
    recent.map((e) => e.rv),
    [46, 47, 48, 49, 50],
  );
  assert.equal(store.eventsSince('/configmaps', 1), 'expired');
  assert.ok(store.oldestWatchableRv >= 30 && store.oldestWatchableRv <= 40, String(store.oldestWatchableRv));
  // A delete is an event with a new resourceVersion, carrying the last state.
  const [del] = await store.commit([{ op: 'delete', skey: '/configmaps', namespace: 'd', name: 'c0' }]);
  assert.equal(del?.type, 'DELETED');
  assert.equal((del as any).object.metadata.resourceVersion, '51');
  assert.equal(store.get('/configmaps', 'd', 'c0'), undefined);
});

test('store: restart replays the log (objects, resourceVersion, and history to resume watches from)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const first = await openStore(dir);
  for (let i = 0; i < 5; i++) await first.commit([{ op: 'put', skey: '/configmaps', object: cm(`c${i}`, i) }]);
  await first.commit([{ op: 'delete', skey: '/configmaps', namespace: 'd', name: 'c1' }]);
  await first.close();
  const second = await openStore(dir);
  t.after(() => second.close());
  assert.equal(second.resourceVersion, 6);
  assert.deepEqual(
    second.list('/configmaps').map((o: any) => o.metadata.name),
    ['c0', 'c2', 'c3', 'c4'],
  );
  const since = second.eventsSince('/configmaps', 3);
  assert.ok(Array.isArray(since));
  assert.deepEqual(
    since.map((e) => `${e.type}:${e.rv}`),
    ['ADDED:4', 'ADDED:5', 'DELETED:6'],
  );
});

test('store: compaction writes a snapshot and empties the log; state and resourceVersion survive', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await openStore(dir, 100, 2000);
  for (let i = 0; i < 40; i++) await store.commit([{ op: 'put', skey: '/configmaps', object: cm(`c${i % 7}`, i) }]);
  await store.close();
  const snapshot = JSON.parse(await readFile(join(dir, 'snapshot.json'), 'utf8'));
  assert.ok(snapshot.rv > 0);
  const reopened = await openStore(dir);
  t.after(() => reopened.close());
  assert.equal(reopened.resourceVersion, 40);
  assert.equal(reopened.list('/configmaps').length, 7);
  assert.equal((reopened.get('/configmaps', 'd', 'c4') as any).data.v, 39);
});

test('wal: a torn last record is ignored with the rest kept; the log is usable afterwards', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-wal-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await openStore(dir);
  for (let i = 0; i < 3; i++) await store.commit([{ op: 'put', skey: '/configmaps', object: cm(`c${i}`, i) }]);
  await store.close();
  // A crash in the middle of an append: a header announcing 500 bytes, only some of them written.
  const header = Buffer.alloc(8);
  header.writeUInt32BE(500, 0);
  await appendFile(join(dir, 'wal.log'), Buffer.concat([header, Buffer.from('{"rv":4,"ops":[')]));
  const warnings: string[] = [];
  const log = { ...silentLogger, warn: (_f: object, msg: string) => warnings.push(msg) };
  const again = new ObjectStore({ historyLimit: 100, compactBytes: 1 << 30 });
  const { wal, contents } = await WriteAheadLog.open(dir, log);
  again.restore(contents.snapshot, contents.records, wal, dir);
  assert.equal(again.resourceVersion, 3);
  assert.match(warnings.join(), /torn last WAL record/);
  await again.commit([{ op: 'put', skey: '/configmaps', object: cm('c9', 9) }]);
  await again.close();
  const third = await openStore(dir);
  t.after(() => third.close());
  assert.equal(third.resourceVersion, 4);
  assert.equal(third.list('/configmaps').length, 4);
});

test('wal: damage before the last record stops the start, naming file and offset', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-wal-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await openStore(dir);
  for (let i = 0; i < 3; i++) await store.commit([{ op: 'put', skey: '/configmaps', object: cm(`c${i}`, i) }]);
  await store.close();
  const path = join(dir, 'wal.log');
  const data = await readFile(path);
  data[12] = data[12] === 0x41 ? 0x42 : 0x41; // a byte inside the first record's payload
  await writeFile(path, data);
  await assert.rejects(WriteAheadLog.open(dir, silentLogger), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'FERRY_APISERVER_WAL_CORRUPT');
    assert.match(err.message, /wal\.log: corrupt record at byte offset 0: checksum mismatch/);
    return true;
  });
  assert.throws(() => decodeRecords(data, 'x'), /offset 0/);
});
