// Bounded fuzzing of the waypoint's HTTP/1.1 and h2c ingress in `npm test` (docs/fuzzing.md): each input on
// a fresh HBONE tunnel into a real waypoint, then a legitimate request must get 200. Fixed seed; the long
// run is `npm run fuzz`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFailures, runFuzzTarget } from '../../bench/fuzz/engine.ts';
import { findTarget } from '../../bench/fuzz/targets.ts';

const SEED = 20_261_202;
const BUDGET: readonly (readonly [string, number])[] = [
  ['waypoint-http1', 400],
  ['waypoint-h2c', 300],
];

for (const [name, inputs] of BUDGET) {
  test(`fuzz ${name}: ${inputs} inputs on fresh tunnels, the waypoint keeps serving`, async () => {
    const entry = findTarget(name);
    assert.ok(entry, name);
    const report = await runFuzzTarget(await entry.load(), { inputs, seed: SEED, batchSize: inputs });
    assert.equal(report.crashes + report.hangs, 0, describeFailures(report));
    assert.equal(report.inputs, inputs);
  });
}
