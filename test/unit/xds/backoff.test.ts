// The xDS reconnect schedule (issue 9, item 3): exponential ceilings capped at maxMs, full jitter, never
// negative, never past the cap whatever the attempt count or the random draw.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_XDS_BACKOFF, reconnectCeilingMs, reconnectDelayMs } from '../../../src/xds/backoff.ts';

test('default schedule: ceilings double from 100 ms and stop at the 5 s cap', () => {
  const ceilings = Array.from({ length: 10 }, (_, attempt) => reconnectCeilingMs(attempt, DEFAULT_XDS_BACKOFF));
  assert.deepEqual(ceilings, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
});

interface Case {
  readonly name: string;
  readonly attempt: number;
  readonly random: number;
  readonly backoff?: { initialMs: number; maxMs: number };
  readonly want: number;
}

const CASES: readonly Case[] = [
  { name: 'full jitter: a draw of 0 retries at once', attempt: 3, random: 0, want: 0 },
  { name: 'full jitter: half the ceiling', attempt: 3, random: 0.5, want: 400 },
  { name: 'full jitter: the top of the window is the ceiling', attempt: 3, random: 0.999999, want: 800 },
  { name: 'the first retry is at most initialMs', attempt: 0, random: 0.999999, want: 100 },
  { name: 'a long outage never waits past the cap', attempt: 12, random: 0.999999, want: 5000 },
  { name: 'huge attempt counts do not overflow past the cap', attempt: 5000, random: 0.999999, want: 5000 },
  { name: 'a draw outside [0, 1) is clamped (high)', attempt: 12, random: 7, want: 5000 },
  { name: 'a draw outside [0, 1) is clamped (low)', attempt: 12, random: -1, want: 0 },
  { name: 'negative attempts count as the first', attempt: -3, random: 0.999999, want: 100 },
  {
    name: 'initialMs above maxMs is held to the cap',
    attempt: 0,
    random: 0.999999,
    backoff: { initialMs: 10_000, maxMs: 2_000 },
    want: 2000,
  },
  {
    name: 'a custom cap (tests use small ones)',
    attempt: 9,
    random: 0.5,
    backoff: { initialMs: 20, maxMs: 500 },
    want: 250,
  },
];

for (const c of CASES) {
  test(`reconnectDelayMs: ${c.name}`, () => {
    assert.equal(reconnectDelayMs(c.attempt, c.backoff ?? DEFAULT_XDS_BACKOFF, c.random), c.want);
  });
}

test('any attempt and draw: 0 ≤ delay ≤ min(cap, initial·2^attempt)', () => {
  for (let attempt = 0; attempt < 40; attempt++) {
    for (const random of [0, 0.1, 0.33, 0.5, 0.77, 0.999]) {
      const d = reconnectDelayMs(attempt, DEFAULT_XDS_BACKOFF, random);
      assert.ok(d >= 0 && d <= Math.min(5000, 100 * 2 ** attempt), `attempt ${attempt} random ${random}: ${d}`);
      assert.ok(Number.isInteger(d));
    }
  }
});
