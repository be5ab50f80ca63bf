// Bounded fuzzing of the listeners in `npm test` (docs/fuzzing.md): HBONE (mTLS + HTTP/2 frames), SOCKS5
// and the CA's gRPC port over real sockets, each input on a fresh connection and followed by a legitimate
// request that must still succeed. Fixed seed; the long run is `npm run fuzz`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFailures, runFuzzTarget } from '../../bench/fuzz/engine.ts';
import { findTarget } from '../../bench/fuzz/targets.ts';

const SEED = 20_261_202;
const BUDGET: readonly (readonly [string, number])[] = [
  ['hbone-server', 400],
  ['socks5-server', 400],
  ['ca-server', 60],
];

for (const [name, inputs] of BUDGET) {
  test(`fuzz ${name}: ${inputs} inputs on fresh connections, the listener keeps serving`, async () => {
    const entry = findTarget(name);
    assert.ok(entry, name);
    const report = await runFuzzTarget(await entry.load(), { inputs, seed: SEED, batchSize: inputs });
    assert.equal(report.crashes + report.hangs, 0, describeFailures(report));
    assert.equal(report.inputs, inputs);
  });
}
