// privilegedTest(): a node:test test that needs root, BPF, cgroup2, bpffs and iproute2. It skips with the
// reason when the machine cannot run it, but FAILS when FERRY_REQUIRE_PRIVILEGED=1 (CI), so a broken CI
// machine can never turn the namespaced suite green by skipping it.
import { execFileSync } from 'node:child_process';
import { statfsSync } from 'node:fs';
import test, { type TestContext, type TestOptions } from 'node:test';
import { probeFeatures } from '../src/redirect-bpf/probe.ts';

const BPF_FS_MAGIC = 0xcafe4a11;
let cached: string | null | undefined;

/** Why privileged tests cannot run here, or null when they can. Mounts bpffs at /sys/fs/bpf if root. */
export function privilegeProblem(): string | null {
  if (cached !== undefined) return cached;
  cached = findProblem();
  return cached;
}

function findProblem(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root';
  // No clang: the redirector loads the shipped bpf/redirect.bpf.o.
  for (const tool of ['ip', 'nsenter']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} not installed`;
    }
  }
  if (!isBpffs('/sys/fs/bpf')) {
    // Test machine setup, as a CI image or a DaemonSet init step would do it.
    try {
      execFileSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf'], { stdio: 'ignore' });
    } catch {
      return 'bpffs not mounted at /sys/fs/bpf and mounting it failed';
    }
  }
  const report = probeFeatures({ pinRoot: '/sys/fs/bpf/ferrytest' });
  const failed = report.checks.filter((c) => !c.ok);
  return failed.length === 0 ? null : failed.map((c) => `${c.name}: ${c.detail}`).join('; ');
}

function isBpffs(dir: string): boolean {
  try {
    return statfsSync(dir).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

export function privilegedTest(name: string, fn: (t: TestContext) => Promise<void>, opts: TestOptions = {}): void {
  test(name, opts, async (t) => {
    const problem = privilegeProblem();
    if (problem !== null) {
      if (process.env.FERRY_REQUIRE_PRIVILEGED === '1') {
        throw new Error(`privileged test required (FERRY_REQUIRE_PRIVILEGED=1) but cannot run: ${problem}`);
      }
      t.skip(problem);
      return;
    }
    await fn(t);
  });
}
