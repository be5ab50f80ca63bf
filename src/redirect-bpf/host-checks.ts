// What this machine needs to run Ferry's BPF data plane, decided from facts gathered elsewhere
// (host-facts.ts reads them): kernel version, BTF, bpffs, cgroup2, capabilities, memlock, libbpf, each BPF
// program type, helper and map type bpf/redirect.bpf.c uses, the shipped object, host tools. Pure: no I/O,
// no FFI, so `ferry doctor`'s verdicts are table-tested (docs/operations.md, "ferry doctor").
import { describeErrno } from './errors.ts';

/** Oldest kernel with everything we use: sk_lookup (5.9), netns cookie in sockops and SO_NETNS_COOKIE (5.14/5.15). */
export const MIN_KERNEL: readonly [number, number] = [5, 15];
/** Kernels from 5.11 charge BPF memory to the memory cgroup instead of RLIMIT_MEMLOCK. */
const MEMCG_ACCOUNTING_KERNEL: readonly [number, number] = [5, 11];
/** What libbpf needs on older kernels, where maps count against RLIMIT_MEMLOCK. */
const MIN_MEMLOCK_BYTES = 64n * 1024n * 1024n;

/** enum bpf_func_id (linux/bpf.h) of every helper bpf/redirect.bpf.c calls. */
export const BPF_HELPER_IDS = {
  map_lookup_elem: 1,
  map_update_elem: 2,
  map_delete_elem: 3,
  get_socket_cookie: 46,
  get_current_cgroup_id: 80,
  sk_release: 86,
  get_netns_cookie: 122,
  get_current_ancestor_cgroup_id: 123,
  sk_assign: 124,
} as const;
export type BpfHelper = keyof typeof BPF_HELPER_IDS;

/** enum bpf_prog_type of each program in bpf/redirect.bpf.c, with the helpers it calls (inlined ones included). */
export const REQUIRED_PROGRAM_TYPES: readonly {
  readonly name: string;
  readonly type: number;
  readonly sections: readonly string[];
  readonly helpers: readonly BpfHelper[];
}[] = [
  {
    name: 'cgroup_sock_addr',
    type: 18,
    sections: ['cgroup/connect4', 'cgroup/connect6'],
    helpers: [
      'map_lookup_elem',
      'map_update_elem',
      'get_current_cgroup_id',
      'get_current_ancestor_cgroup_id',
      'get_socket_cookie',
    ],
  },
  {
    name: 'sock_ops',
    type: 13,
    sections: ['sockops'],
    helpers: ['map_lookup_elem', 'map_update_elem', 'map_delete_elem', 'get_socket_cookie', 'get_netns_cookie'],
  },
  { name: 'sk_lookup', type: 30, sections: ['sk_lookup'], helpers: ['map_lookup_elem', 'sk_assign', 'sk_release'] },
];

/** enum bpf_map_type of each map in bpf/redirect.bpf.c (names as in BPF_MAP_TYPE_*, lower case). */
export const REQUIRED_MAP_TYPES: readonly { readonly name: string; readonly type: number }[] = [
  { name: 'hash', type: 1 },
  { name: 'array', type: 2 },
  { name: 'percpu_array', type: 6 },
  { name: 'lru_hash', type: 9 },
  { name: 'sockhash', type: 18 },
];

/** Capability bits (linux/capability.h) the redirector and the local cluster need. */
export const REQUIRED_CAPABILITIES = { CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21, CAP_BPF: 39 } as const;

/** Host tools the local cluster runs. */
export const REQUIRED_TOOLS: readonly { readonly tool: string; readonly pkg: string }[] = [
  { tool: 'ip', pkg: 'iproute2' },
  { tool: 'nsenter', pkg: 'util-linux' },
  { tool: 'unshare', pkg: 'util-linux' }, // a private mount namespace per pod process (cluster DNS resolv.conf)
  { tool: 'mount', pkg: 'mount' },
];

export type CheckStatus = 'ok' | 'warn' | 'fail';

/** One line of `ferry doctor`. `warn` does not fail the verdict; `fix` says what to do about it. */
export interface HostCheck {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
  readonly fix?: string;
}

/** libbpf_probe_* results: 1 supported, 0 not supported, negative errno when the probe itself failed. */
export interface ProbeResults {
  readonly programTypes: Readonly<Record<string, number>>;
  /** Keyed `${programType}/${helper}`. */
  readonly helpers: Readonly<Record<string, number>>;
  readonly mapTypes: Readonly<Record<string, number>>;
}

export type LibbpfFacts =
  | { readonly available: true; readonly version: string; readonly major: number; readonly minor: number }
  | { readonly available: false; readonly error: string };

export type ObjectFacts =
  | { readonly path: string; readonly loaded: true; readonly compiler: string | null }
  | { readonly path: string; readonly loaded: false; readonly missing: boolean; readonly error: string };

/** Everything the checks look at, as read from this machine. */
export interface HostFacts {
  readonly kernelRelease: string;
  readonly vmlinuxBtf: boolean;
  readonly bpffs: { readonly dir: string; readonly dirExists: boolean; readonly mounted: boolean };
  /** /proc/self/mounts, /proc/self/status, /proc/self/limits. */
  readonly mounts: string;
  readonly procStatus: string;
  readonly procLimits: string;
  readonly libbpf: LibbpfFacts;
  /** null when not probed: no libbpf, or no BPF privileges (libbpf's probes then say "unsupported" to all). */
  readonly probes: ProbeResults | null;
  /** null when not tried, for the same reasons. */
  readonly object: ObjectFacts | null;
  readonly toolsFound: Readonly<Record<string, boolean>>;
}

/** Parses "6.18.44-foo" → [6, 18]; null when unreadable. */
export function parseKernelVersion(text: string): readonly [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** Negative, zero or positive as `a` is older than, equal to or newer than `b`. */
export function compareKernel(a: readonly [number, number], b: readonly [number, number]): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
}

/** First cgroup2 mount point in a /proc/self/mounts text (a container's /host… view of the host is skipped). */
export function findCgroup2Mount(mounts: string): string | null {
  return parseCgroupSetup(mounts).cgroup2;
}

export interface CgroupSetup {
  readonly cgroup2: string | null;
  readonly cgroup2ReadOnly: boolean;
  /** Mount points of cgroup v1 hierarchies (hybrid or legacy hosts). */
  readonly v1: readonly string[];
}

export function parseCgroupSetup(mounts: string): CgroupSetup {
  let cgroup2: string | null = null;
  let cgroup2ReadOnly = false;
  const v1: string[] = [];
  for (const line of mounts.split('\n')) {
    const [, point, fstype, options] = line.split(' ');
    if (point === undefined || point.startsWith('/host')) continue;
    if (fstype === 'cgroup2' && cgroup2 === null) {
      cgroup2 = point;
      cgroup2ReadOnly = (options ?? '').split(',').includes('ro');
    } else if (fstype === 'cgroup') {
      v1.push(point);
    }
  }
  return { cgroup2, cgroup2ReadOnly, v1 };
}

/** The effective capability set from a /proc/<pid>/status text, or null when the line is missing. */
export function parseCapEff(status: string): bigint | null {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status);
  return m?.[1] === undefined ? null : BigInt(`0x${m[1]}`);
}

/** Names of the required capabilities missing from `capEff`, in REQUIRED_CAPABILITIES order. */
export function missingCapabilities(capEff: bigint): string[] {
  return Object.entries(REQUIRED_CAPABILITIES)
    .filter(([, bit]) => ((capEff >> BigInt(bit)) & 1n) === 0n)
    .map(([name]) => name);
}

/** The soft "Max locked memory" limit from a /proc/<pid>/limits text, in bytes; null when missing. */
export function parseMemlockLimit(limits: string): bigint | 'unlimited' | null {
  const m = /^Max locked memory\s+(\S+)/m.exec(limits);
  if (m?.[1] === undefined) return null;
  if (m[1] === 'unlimited') return 'unlimited';
  return /^\d+$/.test(m[1]) ? BigInt(m[1]) : null;
}

/** Every check, in the order `ferry doctor` prints them. */
export function evaluateHost(facts: HostFacts): HostCheck[] {
  const kernel = parseKernelVersion(facts.kernelRelease);
  const capEff = parseCapEff(facts.procStatus);
  const checks: HostCheck[] = [
    checkKernel(facts.kernelRelease, kernel),
    checkBtf(facts.vmlinuxBtf),
    checkBpffs(facts.bpffs),
    checkCgroup2(parseCgroupSetup(facts.mounts)),
    checkCapabilities(capEff),
    checkMemlock(kernel, parseMemlockLimit(facts.procLimits)),
    checkLibbpf(facts.libbpf),
  ];
  if (facts.probes !== null) checks.push(...checkProbes(facts.probes));
  if (facts.object !== null) checks.push(checkObject(facts.object));
  if (facts.libbpf.available && (facts.probes === null || facts.object === null) && !canProbeBpf(capEff)) {
    checks.push({
      name: 'bpf features',
      status: 'fail',
      detail: 'program types, helpers, map types and the object not checked: libbpf needs the capabilities above',
      fix: 'run as root: sudo ./bin/ferry doctor',
    });
  }
  checks.push(checkTools(facts.toolsFound));
  return checks;
}

/** Whether libbpf's probes and a trial load can tell anything: unprivileged, every probe says "unsupported". */
export function canProbeBpf(capEff: bigint | null): boolean {
  return capEff !== null && missingCapabilities(capEff).length === 0;
}

function checkKernel(release: string, kernel: readonly [number, number] | null): HostCheck {
  const min = MIN_KERNEL.join('.');
  if (kernel !== null && compareKernel(kernel, MIN_KERNEL) >= 0) {
    return { name: 'kernel', status: 'ok', detail: `${release} (needs ≥ ${min})` };
  }
  return {
    name: 'kernel',
    status: 'fail',
    detail:
      kernel === null ? `cannot read the version of ${JSON.stringify(release)}` : `${release} is older than ${min}`,
    fix: `boot a kernel ≥ ${min} (sk_lookup, netns cookies in sockops)`,
  };
}

function checkBtf(present: boolean): HostCheck {
  return present
    ? { name: 'btf', status: 'ok', detail: '/sys/kernel/btf/vmlinux' }
    : {
        name: 'btf',
        status: 'warn',
        detail: 'no /sys/kernel/btf/vmlinux; the shipped object does not need it (it reads only UAPI context fields)',
        fix: 'a kernel built with CONFIG_DEBUG_INFO_BTF=y (bpftool and CO-RE programs need it)',
      };
}

function checkBpffs(bpffs: HostFacts['bpffs']): HostCheck {
  if (bpffs.mounted) return { name: 'bpffs', status: 'ok', detail: bpffs.dir };
  if (bpffs.dirExists) {
    return {
      name: 'bpffs',
      status: 'warn',
      detail: `${bpffs.dir} is not a bpf filesystem; ferry up (as root) mounts it itself`,
      fix: `for a ztunnel started on its own: mount -t bpf bpf ${bpffs.dir}`,
    };
  }
  return {
    name: 'bpffs',
    status: 'fail',
    detail: `${bpffs.dir} does not exist: the kernel has no bpf filesystem`,
    fix: 'a kernel with CONFIG_BPF_SYSCALL=y',
  };
}

function checkCgroup2(setup: CgroupSetup): HostCheck {
  if (setup.cgroup2 === null) {
    return {
      name: 'cgroup2',
      status: 'fail',
      detail: `no cgroup2 mount (${setup.v1.length > 0 ? 'legacy cgroup v1 only' : 'no cgroups mounted'})`,
      fix: 'boot with systemd.unified_cgroup_hierarchy=1, or: mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 none /sys/fs/cgroup/unified',
    };
  }
  if (setup.cgroup2ReadOnly) {
    return {
      name: 'cgroup2',
      status: 'fail',
      detail: `${setup.cgroup2} is mounted read-only`,
      fix: `mount -o remount,rw ${setup.cgroup2} (a container needs a writable cgroup2, e.g. --privileged)`,
    };
  }
  const mode =
    setup.v1.length > 0 ? `hybrid: cgroup2 beside ${setup.v1.length} cgroup v1 hierarchies` : 'unified: cgroup2 only';
  return { name: 'cgroup2', status: 'ok', detail: `${setup.cgroup2} (${mode})` };
}

function checkCapabilities(capEff: bigint | null): HostCheck {
  const wanted = Object.keys(REQUIRED_CAPABILITIES).join(', ');
  if (capEff === null) {
    return { name: 'capabilities', status: 'fail', detail: 'no CapEff line in /proc/self/status', fix: 'run on Linux' };
  }
  const missing = missingCapabilities(capEff);
  if (missing.length === 0) return { name: 'capabilities', status: 'ok', detail: wanted };
  return {
    name: 'capabilities',
    status: 'fail',
    detail: `missing ${missing.join(', ')} (CapEff ${capEff.toString(16).padStart(16, '0')})`,
    fix: `run as root (sudo ./bin/ferry …); in a container, grant ${wanted} (or --privileged)`,
  };
}

function checkMemlock(kernel: readonly [number, number] | null, limit: bigint | 'unlimited' | null): HostCheck {
  const shown = limit === null ? 'unknown' : limit === 'unlimited' ? 'unlimited' : formatBytes(limit);
  if (kernel !== null && compareKernel(kernel, MEMCG_ACCOUNTING_KERNEL) >= 0) {
    return { name: 'memlock', status: 'ok', detail: `${shown}; not used: the kernel charges BPF memory to the cgroup` };
  }
  if (limit === 'unlimited' || (limit !== null && limit >= MIN_MEMLOCK_BYTES)) {
    return { name: 'memlock', status: 'ok', detail: shown };
  }
  return {
    name: 'memlock',
    status: 'fail',
    detail: `RLIMIT_MEMLOCK ${shown}: too low for BPF maps on a kernel before 5.11`,
    fix: 'ulimit -l unlimited (systemd: LimitMEMLOCK=infinity)',
  };
}

function checkLibbpf(libbpf: LibbpfFacts): HostCheck {
  if (!libbpf.available) {
    return { name: 'libbpf', status: 'fail', detail: libbpf.error, fix: 'apt-get install libbpf1' };
  }
  if (libbpf.major < 1) {
    return {
      name: 'libbpf',
      status: 'fail',
      detail: `${libbpf.version} is older than 1.0`,
      fix: 'install libbpf 1.0 or newer (Debian package libbpf1)',
    };
  }
  return { name: 'libbpf', status: 'ok', detail: `${libbpf.version} (libbpf.so.1)` };
}

function checkProbes(probes: ProbeResults): HostCheck[] {
  const out: HostCheck[] = [];
  for (const prog of REQUIRED_PROGRAM_TYPES) {
    out.push(probeCheck(`program ${prog.name}`, probes.programTypes[prog.name], prog.sections.join(', ')));
    for (const helper of prog.helpers) {
      out.push(probeCheck(`helper bpf_${helper} (${prog.name})`, probes.helpers[`${prog.name}/${helper}`], ''));
    }
  }
  for (const map of REQUIRED_MAP_TYPES) out.push(probeCheck(`map ${map.name}`, probes.mapTypes[map.name], ''));
  return out;
}

function probeCheck(name: string, rc: number | undefined, usedBy: string): HostCheck {
  const suffix = usedBy === '' ? '' : ` (${usedBy})`;
  if (rc === 1) return { name, status: 'ok', detail: `supported${suffix}` };
  if (rc === -1 || rc === -13) {
    return {
      name,
      status: 'fail',
      detail: `bpf() refused: ${describeErrno(rc)}`,
      fix: 'run as root (sudo ./bin/ferry doctor), with CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN',
    };
  }
  return {
    name,
    status: 'fail',
    detail:
      rc === undefined
        ? 'not probed'
        : rc === 0
          ? 'not supported by this kernel'
          : `probe failed: ${describeErrno(rc)}`,
    fix: `boot a kernel ≥ ${MIN_KERNEL.join('.')} built with CONFIG_BPF_SYSCALL, CONFIG_CGROUP_BPF and CONFIG_BPF_JIT`,
  };
}

function checkObject(object: ObjectFacts): HostCheck {
  if (object.loaded) {
    const by = object.compiler === null ? '' : `, built by ${object.compiler}`;
    return { name: 'object', status: 'ok', detail: `${object.path}: loads, every program verified${by}` };
  }
  if (object.missing) {
    return {
      name: 'object',
      status: 'fail',
      detail: `${object.path} is missing`,
      fix: 'restore it from git (git checkout -- bpf/redirect.bpf.o), or rebuild it: npm run build:bpf',
    };
  }
  return {
    name: 'object',
    status: 'fail',
    detail: `${object.path}: ${object.error}`,
    fix: 'fix the checks above first; otherwise the verifier log above says why, please report it',
  };
}

function checkTools(found: Readonly<Record<string, boolean>>): HostCheck {
  const missing = REQUIRED_TOOLS.filter((t) => found[t.tool] !== true);
  if (missing.length === 0) {
    return { name: 'tools', status: 'ok', detail: `${REQUIRED_TOOLS.map((t) => t.tool).join(', ')} on PATH` };
  }
  return {
    name: 'tools',
    status: 'fail',
    detail: `not on PATH: ${missing.map((t) => t.tool).join(', ')}`,
    fix: `apt-get install ${[...new Set(missing.map((t) => t.pkg))].join(' ')}`,
  };
}

export interface Verdict {
  readonly ok: boolean;
  readonly failed: readonly string[];
  readonly warned: readonly string[];
  /** The last line of `ferry doctor`. */
  readonly line: string;
}

/** Ready when nothing failed; warnings are listed but do not fail. */
export function doctorVerdict(checks: readonly HostCheck[]): Verdict {
  const failed = checks.filter((c) => c.status === 'fail').map((c) => c.name);
  const warned = checks.filter((c) => c.status === 'warn').map((c) => c.name);
  const warnings = warned.length === 0 ? '' : `, ${plural(warned.length, 'warning')} (${warned.join(', ')})`;
  const line =
    failed.length === 0
      ? `verdict: ready: ${checks.length - warned.length} of ${checks.length} checks ok${warnings}`
      : `verdict: NOT ready: ${failed.length} of ${checks.length} checks failed (${failed.join(', ')})${warnings}; fix them as shown above`;
  return { ok: failed.length === 0, failed, warned, line };
}

/** The text report: one line per check, a "fix:" line under each that is not ok, the verdict last. */
export function formatDoctorText(checks: readonly HostCheck[]): string {
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${STATUS_LABEL[c.status].padEnd(5)} ${c.name}: ${c.detail}`);
    if (c.status !== 'ok' && c.fix !== undefined) lines.push(`${' '.repeat(6)}fix: ${c.fix}`);
  }
  lines.push(doctorVerdict(checks).line);
  return `${lines.join('\n')}\n`;
}

const STATUS_LABEL: Readonly<Record<CheckStatus, string>> = { ok: 'ok', warn: 'warn', fail: 'FAIL' };

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function formatBytes(n: bigint): string {
  if (n >= 1024n * 1024n && n % (1024n * 1024n) === 0n) return `${n / (1024n * 1024n)} MiB`;
  if (n >= 1024n && n % 1024n === 0n) return `${n / 1024n} KiB`;
  return `${n} bytes`;
}
