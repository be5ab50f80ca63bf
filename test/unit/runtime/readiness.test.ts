import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReadinessTracker } from '../../../src/runtime/readiness.ts';

test('ready only when every block is released; pending lists names once', async () => {
  const tracker = new ReadinessTracker();
  assert.equal(tracker.ready, true);
  const xds = tracker.block('state manager');
  const proxyA = tracker.block('proxy');
  const proxyB = tracker.block('proxy');
  assert.equal(tracker.ready, false);
  assert.deepEqual(tracker.pending(), ['proxy', 'state manager']);
  const ready = tracker.whenReady();
  xds.unblock();
  xds.unblock(); // idempotent: must not release another holder
  proxyA[Symbol.dispose]();
  assert.deepEqual(tracker.pending(), ['proxy']);
  assert.equal(tracker.ready, false);
  proxyB.unblock();
  assert.equal(tracker.ready, true);
  await ready;
});

test('using-scope releases a block', () => {
  const tracker = new ReadinessTracker();
  {
    using _b = tracker.block('certificates');
    assert.equal(tracker.ready, false);
  }
  assert.equal(tracker.ready, true);
});
