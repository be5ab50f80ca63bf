// Request loops of the e2e tests under load: `ferry exec <pod> -- curl --count … --interval 20` started in
// its own process group and stopped by the test, and reading what it printed: answered requests, failures
// (curl errors, non-200 statuses, an exit without either), and the peer the echo app saw for each answer.
import { spawn } from 'node:child_process';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FerryCli, Run } from './cluster-cli.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
// Loops run until the test stops them, however slow the machine: a count large enough for any run.
const MAX_REQUESTS = 1_000_000;

export interface RequestLoop {
  /** Resolves at the loop's first output (it is running). */
  readonly firstOutput: Promise<void>;
  /** Still running (a loop that ended early failed); then stops it and returns what it printed. */
  stop(): Promise<Run>;
}

/**
 * A request loop from `pod` to `url` that runs until `stop()`: a request cut off by the stop is not a
 * failure; a failed one prints `curl:` to stderr or a non-200 status. Killed in t.after if still running.
 */
export function startRequestLoop(
  t: TestContext,
  cli: FerryCli,
  cluster: string,
  pod: string,
  url: string,
): RequestLoop {
  const args = ['exec', '--cluster', cluster, pod, '--', 'curl', '-s', '--count', String(MAX_REQUESTS)];
  const child = spawn(process.execPath, [MAIN, ...args, '--interval', '20', url], {
    env: { ...process.env, FERRY_STATE_DIR: cli.stateRoot },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: `ferry exec` runs curl in the pod as a child sharing its stdout; stop() kills both.
    detached: true,
  });
  const killGroup = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // ESRCH: the group is gone already.
    }
  };
  t.after(killGroup);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  // Running once the first answer is in (the loop prints `HTTP <status>` per request).
  const firstOutput = new Promise<void>((resolve) => {
    child.stdout.once('data', () => resolve());
    child.stderr.once('data', () => resolve());
    child.once('close', () => resolve());
  });
  return {
    firstOutput,
    async stop(): Promise<Run> {
      const running = child.exitCode === null && child.signalCode === null;
      killGroup();
      await closed;
      return { code: running ? 0 : child.exitCode, stdout, stderr };
    },
  };
}

export interface Tally {
  readonly ok: number;
  readonly failures: readonly string[];
  readonly peers: readonly string[];
}

export function tally(run: Run): Tally {
  const lines = run.stdout.split('\n');
  let ok = 0;
  const peers: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== 'HTTP 200') continue;
    ok++;
    const body = JSON.parse(lines[i + 1] ?? '{}') as { peer?: { address?: string } };
    peers.push(body.peer?.address ?? '?');
  }
  const otherStatus = lines.flatMap((l, i) =>
    l.startsWith('HTTP ') && l !== 'HTTP 200' ? [`${l} ${(lines[i + 1] ?? '').slice(0, 300)}`] : [],
  );
  const failures = [...run.stderr.split('\n').filter((l) => l.startsWith('curl:')), ...otherStatus];
  if (run.code !== 0 && failures.length === 0) failures.push(`exit ${run.code}: ${run.stderr.slice(-500)}`);
  return { ok, failures, peers };
}

/** Consecutive runs of equal values: [a, a, b, a] → [a, b, a]. */
export function phases(peers: readonly string[]): string[] {
  return peers.filter((p, i) => i === 0 || peers[i - 1] !== p);
}
