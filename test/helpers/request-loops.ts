// Reading what a `ferry exec … curl --count N` load loop printed (e2e tests under load): answered requests,
// failures (curl errors, non-200 statuses, an exit without either), and the peer the echo app saw for each
// answer, in order.
import type { Run } from './cluster-cli.ts';

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
