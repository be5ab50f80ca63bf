// ConnectionLimiter: pure counting of concurrent connections per source IP and in total. Refusals say
// which cap refused and are counted; a released lease frees exactly one place (release is idempotent);
// sources with no open connection are forgotten (the map does not grow with every address ever seen).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionLimiter } from '../../../src/runtime/connection-limiter.ts';

test('per-source cap, then total cap; releases free places; stats count refusals', () => {
  const l = new ConnectionLimiter({ maxPerSource: 2, maxTotal: 3 });
  const a1 = l.tryAcquire('10.0.0.1');
  const a2 = l.tryAcquire('10.0.0.1');
  assert.ok(a1.ok && a2.ok);
  assert.deepEqual(l.tryAcquire('10.0.0.1'), { ok: false, reason: 'per-source' });
  const b1 = l.tryAcquire('10.0.0.2');
  assert.ok(b1.ok);
  assert.deepEqual(l.tryAcquire('10.0.0.3'), { ok: false, reason: 'total' });
  assert.deepEqual(l.stats(), {
    open: 3,
    sources: 2,
    refusedPerSource: 1,
    refusedTotal: 1,
    limits: { maxPerSource: 2, maxTotal: 3 },
  });
  a1.lease.release();
  a1.lease.release(); // idempotent: frees one place only
  assert.equal(l.openFrom('10.0.0.1'), 1);
  assert.ok(l.tryAcquire('10.0.0.3').ok);
  assert.deepEqual(l.tryAcquire('10.0.0.4'), { ok: false, reason: 'total' });
  a2.lease.release();
  b1.lease.release();
  assert.equal(l.openFrom('10.0.0.1'), 0);
  assert.equal(l.stats().open, 1);
  assert.equal(l.stats().sources, 1, 'sources without connections are forgotten');
});

test('the total cap is checked first; an unknown source counts as one source', () => {
  const l = new ConnectionLimiter({ maxPerSource: 1, maxTotal: 1 });
  assert.ok(l.tryAcquire('').ok);
  assert.deepEqual(l.tryAcquire(''), { ok: false, reason: 'total' });
});

test('limits must be integers ≥ 1', () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new ConnectionLimiter({ maxPerSource: bad, maxTotal: 10 }), RangeError);
    assert.throws(() => new ConnectionLimiter({ maxPerSource: 1, maxTotal: bad }), RangeError);
  }
});
