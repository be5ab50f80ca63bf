import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ensureTraceparent } from '../../../src/waypoint/trace.ts';

const FORMAT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

test('a valid incoming traceparent is kept', () => {
  const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const headers = new Map([['traceparent', [tp]]]);
  assert.equal(ensureTraceparent(headers).traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.deepEqual(headers.get('traceparent'), [tp]);
});

test('missing, malformed or all-zero traceparents are replaced by fresh, distinct ids', () => {
  const seen = new Set<string>();
  // 1,000 requests cross the 4 KiB random pool's refill several times (24 bytes each).
  for (let i = 0; i < 1000; i++) {
    const incoming = [[], ['garbage'], ['00-00000000000000000000000000000000-00f067aa0ba902b7-01']][i % 3] ?? [];
    const headers = new Map(incoming.length === 0 ? [] : [['traceparent', incoming]]);
    const { traceId } = ensureTraceparent(headers);
    const m = FORMAT.exec(headers.get('traceparent')?.[0] ?? '');
    assert.ok(m !== null, 'W3C format');
    assert.equal(m[1], traceId);
    assert.notEqual(m[1], '0'.repeat(32));
    assert.notEqual(m[2], '0'.repeat(16));
    assert.ok(!seen.has(traceId), 'trace ids do not repeat');
    seen.add(traceId);
  }
});
