import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { test } from 'node:test';
import { DrainController } from '../../../src/runtime/drain.ts';
import { installSignalHandlers } from '../../../src/runtime/signals.ts';

test('SIGTERM starts a graceful drain; a second one escalates; dispose removes the handlers', async () => {
  const source = new EventEmitter();
  const drain = new DrainController();
  drain.track();
  const handlers = installSignalHandlers({ drain, drainDeadlineMs: 60_000, source });
  source.emit('SIGTERM', 'SIGTERM');
  assert.equal(drain.signal.aborted, true);
  assert.equal(drain.forceSignal.aborted, false);
  source.emit('SIGINT', 'SIGINT');
  assert.equal(drain.forceSignal.aborted, true);
  assert.deepEqual(await drain.drained, { forced: true, remaining: 1 });
  handlers[Symbol.dispose]();
  assert.equal(source.listenerCount('SIGTERM'), 0);
  assert.equal(source.listenerCount('SIGINT'), 0);
  assert.equal(source.listenerCount('SIGHUP'), 0);
});

test('a real SIGHUP to this process calls reload; a failing reload does not crash', async (t) => {
  const drain = new DrainController();
  let reloads = 0;
  const reloaded = new EventEmitter();
  const handlers = installSignalHandlers({
    drain,
    drainDeadlineMs: 1_000,
    reload: () => {
      reloads++;
      reloaded.emit('done');
      throw new Error('bad config');
    },
  });
  t.after(() => handlers[Symbol.dispose]());
  const fired = once(reloaded, 'done');
  process.kill(process.pid, 'SIGHUP');
  await fired;
  assert.equal(reloads, 1);
  assert.equal(drain.phase, 'running');
});

test('a real SIGTERM to this process drains instead of killing it', async (t) => {
  const drain = new DrainController();
  const handlers = installSignalHandlers({ drain, drainDeadlineMs: 1_000 });
  t.after(() => handlers[Symbol.dispose]());
  const aborted = once(drain.signal, 'abort');
  process.kill(process.pid, 'SIGTERM');
  await aborted;
  assert.deepEqual(await drain.drained, { forced: false, remaining: 0 });
});
