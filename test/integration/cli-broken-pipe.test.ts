// The CLI piped into a reader that stops early (`ferry … | head`) exits quietly: EPIPE on stdout is the
// reader's choice, not a crash with a stack trace (issue 9, item 6).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const FERRY = new URL('../../bin/ferry', import.meta.url).pathname;

interface Ended {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

async function ended(child: ReturnType<typeof spawn>): Promise<Ended> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stderr };
}

test('ferry --help with its stdout pipe closed before it writes: no stack trace, exit 0', async () => {
  const child = spawn(FERRY, ['--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // the reader is gone before the CLI's first write
  const r = await ended(child);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
});

test('ferry logs <big log> | head -1: head gets its line, ferry exits quietly', async (t) => {
  const stateRoot = await mkdtemp(join(tmpdir(), 'ferrytest-epipe-'));
  t.after(() => rm(stateRoot, { recursive: true, force: true }));
  await mkdir(join(stateRoot, 'pipe', 'logs'), { recursive: true });
  // Far more than a pipe buffer (64 KiB), so ferry is still writing when head exits.
  const line = `${JSON.stringify({ level: 30, msg: 'x'.repeat(200) })}\n`;
  await writeFile(join(stateRoot, 'pipe', 'logs', 'controller.log'), line.repeat(20_000));
  const child = spawn(
    'bash',
    ['-c', `"${FERRY}" logs controller --cluster pipe | head -1; echo "ferry=\${PIPESTATUS[0]}"`],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FERRY_STATE_DIR: stateRoot },
    },
  );
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  const r = await ended(child);
  assert.equal(r.code, 0);
  assert.equal(r.stderr, '', 'no EPIPE stack trace');
  assert.equal(stdout, `${line}ferry=0\n`);
});
