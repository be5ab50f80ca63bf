// The supervisor's crash-loop backoff: immediate first restart, then 0.5, 1, 2, 4 s capped at 5 s; a process
// that ran 10 s is healthy again (its next restart is immediate); restarts are counted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  backoffMs,
  NEW_RESTART_STATE,
  onExit,
  onRestart,
  onRunning,
  type RestartState,
} from '../../../src/local-cluster/restart-policy.ts';

test('backoff by exits in a row', () => {
  const table: [number, number][] = [
    [1, 0],
    [2, 500],
    [3, 1_000],
    [4, 2_000],
    [5, 4_000],
    [6, 5_000],
    [50, 5_000],
  ];
  for (const [loop, ms] of table) assert.equal(backoffMs(loop), ms, `exit #${loop}`);
});

test('a crash loop: each start dies at once, the delays grow to the cap, restarts are counted', () => {
  let s: RestartState = onRunning(NEW_RESTART_STATE, 0);
  let now = 1_000;
  const delays: number[] = [];
  for (let i = 0; i < 7; i++) {
    const e = onExit(s, now);
    delays.push(e.restartAtMs - now);
    now = e.restartAtMs;
    s = onRestart(e.state, now);
    now += 100; // dies 100 ms after each start
  }
  assert.deepEqual(delays, [0, 500, 1_000, 2_000, 4_000, 5_000, 5_000]);
  assert.equal(s.restarts, 7);
});

test('a process that ran 10 s before dying restarts at once (the loop starts over)', () => {
  let s = onRestart(onExit(onRestart(onExit(onRunning(NEW_RESTART_STATE, 0), 50).state, 50), 60).state, 560);
  assert.equal(s.crashLoop, 2);
  const late = onExit(s, 560 + 10_000);
  assert.equal(late.restartAtMs, 560 + 10_000);
  assert.equal(late.state.crashLoop, 1);
  s = onRestart(late.state, late.restartAtMs);
  assert.equal(s.restarts, 3);
});

test('found dead at the supervisor start (never seen running): restarted at once', () => {
  const e = onExit(NEW_RESTART_STATE, 5);
  assert.equal(e.restartAtMs, 5);
  assert.equal(e.state.lastExitAtMs, 5);
});
