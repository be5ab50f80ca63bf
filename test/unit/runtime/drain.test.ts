import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DrainController, type DrainOutcome } from '../../../src/runtime/drain.ts';
import { RuntimeError } from '../../../src/runtime/errors.ts';

function settledFlag(p: Promise<DrainOutcome>): { value: DrainOutcome | undefined } {
  const box: { value: DrainOutcome | undefined } = { value: undefined };
  void p.then((v) => {
    box.value = v;
  });
  return box;
}

const codeOf = (signal: AbortSignal): string | undefined =>
  signal.reason instanceof RuntimeError ? signal.reason.code : undefined;

test('drain with no work finishes at once, not forced', async () => {
  const drain = new DrainController();
  const outcome = await drain.trigger({ deadlineMs: 10_000 });
  assert.deepEqual(outcome, { forced: false, remaining: 0 });
  assert.equal(drain.signal.aborted, true);
  assert.equal(codeOf(drain.signal), 'FERRY_RUNTIME_DRAINING');
  assert.equal(drain.phase, 'done');
});

test('graceful drain waits for tracked work, then completes without force', async () => {
  const drain = new DrainController();
  const a = drain.track();
  const b = drain.track();
  let stoppedAccepting = false;
  drain.signal.addEventListener('abort', () => {
    stoppedAccepting = true;
  });
  const done = settledFlag(drain.trigger({ deadlineMs: 60_000 }));
  assert.equal(stoppedAccepting, true);
  assert.equal(drain.forceSignal.aborted, false);
  // Work accepted just before the stop may still register while draining.
  const late = drain.track();
  a[Symbol.dispose]();
  b[Symbol.dispose]();
  b[Symbol.dispose](); // double release must not count twice
  await Promise.resolve();
  assert.equal(done.value, undefined);
  late[Symbol.dispose]();
  assert.deepEqual(await drain.drained, { forced: false, remaining: 0 });
  assert.throws(
    () => drain.track(),
    (err: unknown) => err instanceof RuntimeError && err.code === 'FERRY_RUNTIME_DRAINED',
  );
});

test('deadline passes: the force signal aborts and drained reports what remained', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const drain = new DrainController();
  drain.track();
  drain.track();
  const done = settledFlag(drain.trigger({ deadlineMs: 1_000 }));
  t.mock.timers.tick(999);
  await Promise.resolve();
  assert.equal(drain.forceSignal.aborted, false);
  assert.equal(done.value, undefined);
  t.mock.timers.tick(1);
  assert.equal(drain.forceSignal.aborted, true);
  assert.equal(codeOf(drain.forceSignal), 'FERRY_RUNTIME_DRAIN_DEADLINE');
  assert.deepEqual(await drain.drained, { forced: true, remaining: 2 });
});

test('second graceful trigger is a no-op; an immediate trigger escalates', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const drain = new DrainController();
  drain.track();
  const first = drain.trigger({ deadlineMs: 5_000 });
  const second = drain.trigger({ deadlineMs: 1 });
  assert.equal(first, second);
  t.mock.timers.tick(10); // the second trigger's shorter deadline was ignored
  assert.equal(drain.forceSignal.aborted, false);
  void drain.trigger({ deadlineMs: 5_000, mode: 'immediate' });
  assert.equal(drain.forceSignal.aborted, true);
  assert.deepEqual(await first, { forced: true, remaining: 1 });
  // Nothing left to fire later.
  t.mock.timers.tick(10_000);
});

test('immediate drain with live work forces at once', async () => {
  const drain = new DrainController();
  using _work = drain.track();
  const outcome = await drain.trigger({ deadlineMs: 30_000, mode: 'immediate' });
  assert.deepEqual(outcome, { forced: true, remaining: 1 });
  assert.equal(drain.signal.aborted, true);
  assert.equal(drain.forceSignal.aborted, true);
});

test('per-connection signals joined with AbortSignal.any see the force', async () => {
  const drain = new DrainController();
  const conn = new AbortController();
  const joined = AbortSignal.any([drain.forceSignal, conn.signal]);
  drain.track();
  await drain.trigger({ deadlineMs: 0 });
  assert.equal(joined.aborted, true);
});
