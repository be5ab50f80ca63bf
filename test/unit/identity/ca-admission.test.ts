// CaAdmission: the CA's signing slots and queue, as pure counting. Slots up to maxConcurrent, then FIFO
// waiters up to maxQueued, then shed (with the counts for the message); one caller holds at most its
// share; a released slot passes straight to the next waiter; an aborted waiter leaves the queue; a double
// dispose frees one slot only.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CaAdmission, defaultCaAdmissionLimits } from '../../../src/identity/ca-admission.ts';

test('slots, then a FIFO queue, then shed', async () => {
  const a = new CaAdmission({ maxConcurrent: 2, maxQueued: 2, maxPerCaller: 10 });
  const order: string[] = [];
  const enter = (name: string) => {
    const r = a.enter();
    if (r.kind === 'shed') return r;
    const slot = r.slot.then((s) => {
      order.push(name);
      return s;
    });
    return { kind: r.kind, slot };
  };
  const s1 = enter('1');
  const s2 = enter('2');
  const q3 = enter('3');
  const q4 = enter('4');
  assert.deepEqual(enter('5'), { kind: 'shed', reason: 'queue', active: 2, queued: 2 });
  assert.equal(a.active, 2);
  assert.equal(a.queued, 2);
  assert.ok(s1.kind === 'admitted' && s2.kind === 'admitted' && q3.kind === 'admitted' && q4.kind === 'admitted');
  const first = await s1.slot;
  await s2.slot;
  assert.deepEqual(order, ['1', '2']);
  first[Symbol.dispose]();
  first[Symbol.dispose](); // idempotent
  const third = await q3.slot;
  assert.deepEqual(order, ['1', '2', '3']);
  assert.equal(a.active, 2);
  assert.equal(a.queued, 1);
  third[Symbol.dispose]();
  (await q4.slot)[Symbol.dispose]();
  assert.equal(a.queued, 0);
  assert.equal(a.active, 1); // only slot 2 is still held
});

test('an aborted waiter leaves the queue and never takes a slot', async () => {
  const a = new CaAdmission({ maxConcurrent: 1, maxQueued: 1, maxPerCaller: 10 });
  const held = a.enter();
  assert.equal(held.kind, 'admitted');
  const ac = new AbortController();
  const waiting = a.enter(ac.signal);
  assert.equal(waiting.kind, 'admitted');
  assert.equal(a.queued, 1);
  ac.abort(new Error('client went away'));
  await assert.rejects(waiting.kind === 'admitted' ? waiting.slot : Promise.resolve(), /client went away/);
  assert.equal(a.queued, 0);
  if (held.kind === 'admitted') (await held.slot)[Symbol.dispose]();
  assert.equal(a.active, 0);
  const already = a.enter(AbortSignal.abort(new Error('late')));
  assert.equal(already.kind, 'admitted');
  await assert.rejects(already.kind === 'admitted' ? already.slot : Promise.resolve(), /late/);
  assert.equal(a.active, 0);
});

test('one caller holds at most its share; others still get in; a released share is usable again', async () => {
  const a = new CaAdmission({ maxConcurrent: 2, maxQueued: 6 }); // default share: (2 + 6) / 4 = 2
  const b1 = a.enter(undefined, 'node-b');
  const b2 = a.enter(undefined, 'node-b');
  assert.equal(b1.kind, 'admitted');
  assert.equal(b2.kind, 'admitted');
  assert.deepEqual(a.enter(undefined, 'node-b'), { kind: 'shed', reason: 'caller', active: 2, queued: 0 });
  const n1 = a.enter(undefined, 'node-a'); // queued behind node-b's two
  assert.equal(n1.kind, 'admitted');
  assert.equal(a.queued, 1);
  if (b1.kind === 'admitted') (await b1.slot)[Symbol.dispose]();
  if (n1.kind === 'admitted') (await n1.slot)[Symbol.dispose]();
  assert.equal(a.enter(undefined, 'node-b').kind, 'admitted', 'node-b has a free share again');
});

test('a freed slot goes to the callers in turn: another node waits for one signing, not for a whole queue', async () => {
  const a = new CaAdmission({ maxConcurrent: 1, maxQueued: 10, maxPerCaller: 10 });
  const order: string[] = [];
  const slots: Promise<void>[] = [];
  const enter = (caller: string, name: string) => {
    const r = a.enter(undefined, caller);
    assert.equal(r.kind, 'admitted');
    if (r.kind === 'admitted') {
      slots.push(
        r.slot.then((s) => {
          order.push(name);
          setImmediate(() => s[Symbol.dispose]()); // the signing is done: the slot goes to the next
        }),
      );
    }
  };
  enter('node-b', 'b0'); // takes the slot
  for (let i = 1; i <= 4; i++) enter('node-b', `b${i}`);
  enter('node-a', 'a1');
  enter('node-a', 'a2');
  await Promise.all(slots);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['b0', 'b1', 'a1', 'b2', 'a2', 'b3', 'b4']);
  assert.equal(a.active, 0);
  assert.equal(a.queued, 0);
});

test('defaults scale with cores; invalid limits throw', () => {
  assert.deepEqual(defaultCaAdmissionLimits(2), { maxConcurrent: 4, maxQueued: 128 });
  assert.deepEqual(defaultCaAdmissionLimits(1), { maxConcurrent: 2, maxQueued: 64 });
  assert.throws(() => new CaAdmission({ maxConcurrent: 0, maxQueued: 1 }), RangeError);
  assert.throws(() => new CaAdmission({ maxConcurrent: 1, maxQueued: -1 }), RangeError);
});
