// Feature probing (docs/redirect.md): can this machine run the redirector, and if not, what should the operator
// do? The quick start-up subset, each check a value with a BpfErrorCode; `assertRedirectorSupported` throws
// the first failure as a BpfError. `ferry doctor` runs the full list (host-checks.ts, host-facts.ts).
import { readFileSync, statfsSync } from 'node:fs';
import { release } from 'node:os';
import { dirname } from 'node:path';
import { BpfError, type BpfErrorCode, describeErrno } from './errors.ts';
import { ffi } from './ffi.ts';
import {
  compareKernel,
  findCgroup2Mount,
  MIN_KERNEL,
  parseKernelVersion,
  REQUIRED_PROGRAM_TYPES,
} from './host-checks.ts';

export { findCgroup2Mount, MIN_KERNEL, parseKernelVersion };

const BPF_FS_MAGIC = 0xcafe4a11;

export type FeatureCheck =
  | { readonly name: string; readonly ok: true; readonly detail: string }
  | { readonly name: string; readonly ok: false; readonly code: BpfErrorCode; readonly detail: string };

export interface FeatureReport {
  readonly ok: boolean;
  readonly checks: readonly FeatureCheck[];
  /** Where cgroup2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts), if anywhere. */
  readonly cgroup2Mount: string | null;
}

export function cgroup2MountPoint(): string | null {
  return findCgroup2Mount(readFileSync('/proc/self/mounts', 'utf8'));
}

export function probeFeatures(opts: { pinRoot?: string } = {}): FeatureReport {
  const checks: FeatureCheck[] = [];
  const kernelText = release();
  const kernel = parseKernelVersion(kernelText);
  if (kernel !== null && compareKernel(kernel, MIN_KERNEL) >= 0) {
    checks.push({ name: 'kernel', ok: true, detail: kernelText });
  } else {
    checks.push({
      name: 'kernel',
      ok: false,
      code: 'FERRY_BPF_KERNEL_TOO_OLD',
      detail: `kernel ${kernelText} is older than ${MIN_KERNEL.join('.')}; upgrade the node kernel`,
    });
  }

  const cgroup2Mount = cgroup2MountPoint();
  checks.push(
    cgroup2Mount !== null
      ? { name: 'cgroup2', ok: true, detail: cgroup2Mount }
      : {
          name: 'cgroup2',
          ok: false,
          code: 'FERRY_BPF_CGROUP2_MISSING',
          detail:
            'no cgroup2 mount (checked /proc/self/mounts); boot with systemd.unified_cgroup_hierarchy=1 or mount -t cgroup2 none /sys/fs/cgroup/unified',
        },
  );

  const bpffsDir = dirname(opts.pinRoot ?? '/sys/fs/bpf/ferry');
  checks.push(
    isBpffs(bpffsDir)
      ? { name: 'bpffs', ok: true, detail: bpffsDir }
      : {
          name: 'bpffs',
          ok: false,
          code: 'FERRY_BPF_BPFFS_MISSING',
          detail: `${bpffsDir} is not a bpf filesystem; run: mount -t bpf bpf ${bpffsDir}`,
        },
  );

  checks.push(...probeProgramTypes());
  return { ok: checks.every((c) => c.ok), checks, cgroup2Mount };
}

function probeProgramTypes(): FeatureCheck[] {
  let bpf: ReturnType<typeof ffi>['bpf'];
  try {
    bpf = ffi().bpf;
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return [{ name: 'libbpf', ok: false, code: 'FERRY_BPF_LIBBPF_UNAVAILABLE', detail }];
  }
  const out: FeatureCheck[] = [];
  for (const { type, name } of REQUIRED_PROGRAM_TYPES) {
    const rc = bpf.probeProgType(type, null);
    if (rc === 1) {
      out.push({ name: `prog:${name}`, ok: true, detail: 'supported' });
    } else if (rc === -1 || rc === -13) {
      out.push({
        name: `prog:${name}`,
        ok: false,
        code: 'FERRY_BPF_NOT_PERMITTED',
        detail: `bpf() refused (${describeErrno(rc)}); run as root or with CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN`,
      });
    } else {
      out.push({
        name: `prog:${name}`,
        ok: false,
        code: 'FERRY_BPF_PROG_TYPE_UNSUPPORTED',
        detail: `kernel cannot load ${name} programs (${rc < 0 ? describeErrno(rc) : 'not supported'})`,
      });
    }
  }
  return out;
}

export function assertRedirectorSupported(report: FeatureReport): void {
  for (const check of report.checks) {
    if (!check.ok) throw new BpfError(check.code, `${check.name}: ${check.detail}`);
  }
}

/** Whether `dir` is the root of a mounted bpf filesystem (statfs magic). */
export function isBpffs(dir: string): boolean {
  try {
    return statfsSync(dir).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}
