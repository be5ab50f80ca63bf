// A ztunnel copying bulk data allocates an ArrayBuffer per chunk. With its GC tuning those short-lived
// buffers no longer set off full mark-compacts of the heap (each one costs tens of ms of CPU at the
// ztunnel's heap size); without it, V8 runs one every ~64 MiB of them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const CHURN = fileURLToPath(new URL('../../fixtures/ztunnel/buffer-churn.ts', import.meta.url));

function gcCounts(mode: 'plain' | 'tuned'): { major: number; minor: number } {
  // The ztunnel's semi-space limit (src/ztunnel/heap-limits.ts) so the young generation is the same.
  const out = execFileSync(process.execPath, ['--max-semi-space-size=16', CHURN, mode], { encoding: 'utf8' });
  return JSON.parse(out.trim()) as { major: number; minor: number };
}

test('1 GiB of short-lived chunk buffers cause no repeated full GCs once the ztunnel GC tuning is applied', () => {
  const plain = gcCounts('plain');
  const tuned = gcCounts('tuned');
  // Untuned: about one mark-compact per 64 MiB (12-14 measured); tuned: 0-1.
  assert.ok(plain.major >= 6, `untuned V8 is expected to mark-compact on external memory: ${JSON.stringify(plain)}`);
  assert.ok(tuned.major <= 2, `tuned: ${JSON.stringify(tuned)}, untuned: ${JSON.stringify(plain)}`);
  assert.ok(tuned.minor > 0, 'the buffers are still freed, by scavenges');
});
