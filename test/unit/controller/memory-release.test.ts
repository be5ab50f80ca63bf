// MemoryReleaser: one check once changes have been quiet (debounced), a release only when the heap reserves
// more than the threshold beyond what it uses, nothing after close; and the real release in this process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type HeapReading,
  MemoryReleaser,
  readV8Heap,
  releaseHeapMemory,
  shouldReleaseHeap,
} from '../../../src/controller/memory-release.ts';

const MIB = 1024 * 1024;
const heap = (totalMib: number, usedMib: number): HeapReading => ({
  totalBytes: totalMib * MIB,
  usedBytes: usedMib * MIB,
});

test('shouldReleaseHeap: only when committed minus used exceeds the threshold', () => {
  assert.equal(shouldReleaseHeap(heap(155, 25), 64 * MIB), true);
  assert.equal(shouldReleaseHeap(heap(60, 25), 64 * MIB), false);
  assert.equal(shouldReleaseHeap(heap(89, 25), 64 * MIB), false); // exactly 64: not above
});

test('MemoryReleaser: debounced, releases once when over the threshold, never after close', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let reading = heap(200, 20);
  const released: number[] = [];
  const r = new MemoryReleaser({
    quietMs: 1000,
    thresholdBytes: 64 * MIB,
    readHeap: () => reading,
    release: async () => {
      released.push(reading.totalBytes);
      reading = heap(30, 20);
    },
  });
  r.changed();
  t.mock.timers.tick(900);
  r.changed(); // a second change restarts the quiet period
  t.mock.timers.tick(900);
  assert.equal(released.length, 0);
  t.mock.timers.tick(100);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(released, [200 * MIB]);
  r.changed(); // now under the threshold: looked at, not released
  t.mock.timers.tick(1000);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(released.length, 1);
  reading = heap(300, 20);
  r.changed();
  r.close();
  t.mock.timers.tick(5000);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(released.length, 1);
});

test('releaseHeapMemory: a memory-reducing collection in this process (no debugger port)', async () => {
  let garbage: unknown[] | null = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
  assert.equal(garbage.length, 200_000);
  garbage = null;
  await releaseHeapMemory();
  const after = readV8Heap();
  assert.ok(after.usedBytes <= after.totalBytes);
});
