// Enrollment time of the redirect benchmark: N already-created pods (netns + veth + cgroup) on one node are
// enrolled into that node's ztunnel over its admin API (POST /pods), timed end to end from the caller, then
// unenrolled (DELETE /pods/<uid>, also timed). Three passes: sequential (each pod's first enrollment),
// concurrent, sequential again. Each bulk pod has its own service account, but the ztunnel prefetches the
// certificates of its node's workloads at startup (src/ztunnel/app.ts), so no pass includes CA signing.

import type { Pod } from '../testkit/topology.ts';
import type { NodeProxy } from './redirect-setup.ts';
import { r3 } from './report.ts';

export interface EnrollPass {
  readonly pass: 'sequential_first' | 'concurrent' | 'sequential_again';
  readonly concurrency: number;
  readonly enroll_ms: number;
  readonly enroll_per_pod_ms: number;
  readonly unenroll_ms: number;
  readonly unenroll_per_pod_ms: number;
}

/** Runs op over items with at most `limit` in flight; rejects on the first failure. */
async function pool<T>(items: readonly T[], limit: number, op: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await op(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

export async function measureEnrollment(
  proxy: NodeProxy,
  pods: readonly Pod[],
  concurrency: number,
  say: (text: string) => void,
  /** Called once while all pods are enrolled (first pass), e.g. to read the ztunnel's RSS. */
  whileEnrolled: () => void = () => undefined,
): Promise<EnrollPass[]> {
  const passes: Array<[EnrollPass['pass'], number]> = [
    ['sequential_first', 1],
    ['concurrent', concurrency],
    ['sequential_again', 1],
  ];
  const results: EnrollPass[] = [];
  for (const [pass, limit] of passes) {
    const enrollMs = await timed(() => pool(pods, limit, (p) => proxy.enroll(p)));
    if (results.length === 0) whileEnrolled();
    const unenrollMs = await timed(() => pool(pods, limit, (p) => proxy.unenroll(p)));
    const r: EnrollPass = {
      pass,
      concurrency: limit,
      enroll_ms: r3(enrollMs),
      enroll_per_pod_ms: r3(enrollMs / pods.length),
      unenroll_ms: r3(unenrollMs),
      unenroll_per_pod_ms: r3(unenrollMs / pods.length),
    };
    results.push(r);
    say(
      `  ${pass.padEnd(16)} x${String(limit).padEnd(2)} enroll ${pods.length} pods ${r.enroll_ms.toFixed(0)} ms ` +
        `(${r.enroll_per_pod_ms.toFixed(2)} ms/pod), unenroll ${r.unenroll_ms.toFixed(0)} ms ` +
        `(${r.unenroll_per_pod_ms.toFixed(2)} ms/pod)`,
    );
  }
  return results;
}
