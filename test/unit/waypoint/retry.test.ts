import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type RetryInput, retryDecision } from '../../../src/waypoint/upstream/retry.ts';

const policy = { attempts: 2, codes: [503], backoffMs: 10 };
const base: RetryInput = {
  outcome: { kind: 'response', status: 503 },
  retry: policy,
  retriesMade: 0,
  replayable: true,
  remainingMs: Number.POSITIVE_INFINITY,
};

describe('retry decisions (Gateway API retry: attempts = retries after the first try)', () => {
  const table: [string, Partial<RetryInput>, boolean, number?][] = [
    ['503 in codes, first retry', {}, true, 10],
    ['second retry backs off exponentially', { retriesMade: 1 }, true, 20],
    ['attempts exhausted', { retriesMade: 2 }, false],
    ['500 not in codes', { outcome: { kind: 'response', status: 500 } }, false],
    ['200 never', { outcome: { kind: 'response', status: 200 } }, false],
    ['connect failure is retried', { outcome: { kind: 'connect-failure' } }, true, 10],
    ['reset is retried', { outcome: { kind: 'reset' } }, true, 10],
    ['per-try timeout is retried', { outcome: { kind: 'per-try-timeout' } }, true, 10],
    ['no retry stanza', { retry: null }, false],
    ['streamed body cannot be replayed', { replayable: false }, false],
    ['backoff would pass the request deadline', { remainingMs: 5 }, false],
    ['backoff capped at 10×', { retry: { attempts: 10, codes: [503], backoffMs: 10 }, retriesMade: 8 }, true, 100],
    ['zero backoff', { retry: { attempts: 1, codes: [503], backoffMs: 0 } }, true, 0],
  ];
  for (const [what, over, retry, wait] of table) {
    it(what, () => {
      const d = retryDecision({ ...base, ...over });
      assert.equal(d.retry, retry);
      if (d.retry) assert.equal(d.waitMs, wait);
    });
  }
});
