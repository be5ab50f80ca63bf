// Bounded fuzzing of the pure parsers in `npm test` (docs/fuzzing.md): a fixed seed and a few thousand
// structure-aware inputs per target; the long run is `npm run fuzz`. A failure names the seed and the
// shrunk input, and the command that replays it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFailures, runFuzzTarget } from '../../bench/fuzz/engine.ts';
import { findTarget } from '../../bench/fuzz/targets.ts';

const SEED = 20_261_202;

const BUDGET: readonly (readonly [string, number])[] = [
  ['hbone-connect', 10_000],
  ['socks5-parse', 10_000],
  ['dns-query', 2_000],
  ['xds', 8_000],
  ['httproute', 8_000],
  ['csr', 1_000],
  ['manifests', 600],
];

for (const [name, inputs] of BUDGET) {
  test(`fuzz ${name}: ${inputs} inputs, no crash, no hang`, async () => {
    const entry = findTarget(name);
    assert.ok(entry, name);
    const report = await runFuzzTarget(await entry.load(), { inputs, seed: SEED, batchSize: inputs });
    assert.equal(report.crashes + report.hangs, 0, describeFailures(report));
    assert.equal(report.inputs, inputs);
  });
}
