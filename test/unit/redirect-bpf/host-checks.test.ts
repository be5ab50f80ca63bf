// `ferry doctor`'s decisions (src/redirect-bpf/host-checks.ts) as tables: parsing /proc texts, kernel
// versions, cgroup modes, each check's status and fix, the verdict; and the requirement tables checked
// against bpf/redirect.bpf.c (and linux/bpf.h when installed), so a new helper or map type in the C
// cannot go unprobed.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import test from 'node:test';
import { BPF_SOURCE_DIR } from '../../../src/redirect-bpf/build.ts';
import {
  BPF_HELPER_IDS,
  compareKernel,
  doctorVerdict,
  evaluateHost,
  formatDoctorText,
  type HostCheck,
  type HostFacts,
  missingCapabilities,
  parseCapEff,
  parseCgroupSetup,
  parseKernelVersion,
  parseMemlockLimit,
  REQUIRED_MAP_TYPES,
  REQUIRED_PROGRAM_TYPES,
} from '../../../src/redirect-bpf/host-checks.ts';

const ROOT_CAPS = '000001ffffffffff';

test('parseCapEff reads the effective set as a bitmask', () => {
  const cases: [string, string, bigint | null][] = [
    ['root', `Name:\tnode\nCapPrm:\t${ROOT_CAPS}\nCapEff:\t${ROOT_CAPS}\nCapBnd:\t${ROOT_CAPS}\n`, 0x1ffffffffffn],
    ['unprivileged', 'CapEff:\t0000000000000000\n', 0n],
    ['upper-case hex', 'CapEff:\t00000000A80425FB\n', 0xa80425fbn],
    ['no CapEff line', 'Name:\tnode\nCapPrm:\t0000000000000000\n', null],
  ];
  for (const [name, status, want] of cases) assert.equal(parseCapEff(status), want, name);
});

test('missingCapabilities names CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_BPF that are not set', () => {
  const bit = (n: number) => 1n << BigInt(n);
  const cases: [string, bigint, string[]][] = [
    ['root', 0x1ffffffffffn, []],
    ['root without CAP_SYS_RESOURCE (a sandbox)', 0x1fffeffffffn, []],
    ['nothing', 0n, ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_BPF']],
    ['Docker default set', 0xa80425fbn, ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_BPF']],
    ['pre-5.8 root (no CAP_BPF bit)', 0x3fffffffffn, ['CAP_BPF']],
    ['only CAP_BPF', bit(39), ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN']],
    ['all three exactly', bit(12) | bit(21) | bit(39), []],
  ];
  for (const [name, capEff, want] of cases) assert.deepEqual(missingCapabilities(capEff), want, name);
});

test('kernel versions parse and compare by major, then minor', () => {
  assert.deepEqual(parseKernelVersion('6.18.44-fc-v1045'), [6, 18]);
  assert.deepEqual(parseKernelVersion('5.15.0-91-generic'), [5, 15]);
  assert.equal(parseKernelVersion('unknown'), null);
  const cases: [readonly [number, number], readonly [number, number], number][] = [
    [[5, 15], [5, 15], 0],
    [[5, 14], [5, 15], -1],
    [[6, 0], [5, 15], 1],
    [[4, 19], [5, 15], -1],
    [[5, 16], [5, 15], 1],
  ];
  for (const [a, b, sign] of cases) assert.equal(Math.sign(compareKernel(a, b)), sign, `${a} vs ${b}`);
});

test('parseCgroupSetup finds cgroup2 (unified, hybrid, read-only) and skips a container view of the host', () => {
  const unified = 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n';
  const hybrid =
    'tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n' +
    'cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n';
  const cases: [string, string, ReturnType<typeof parseCgroupSetup>][] = [
    ['unified', unified, { cgroup2: '/sys/fs/cgroup', cgroup2ReadOnly: false, v1: [] }],
    [
      'hybrid',
      hybrid,
      {
        cgroup2: '/sys/fs/cgroup/unified',
        cgroup2ReadOnly: false,
        v1: ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/memory'],
      },
    ],
    [
      'legacy',
      'cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n',
      { cgroup2: null, cgroup2ReadOnly: false, v1: ['/sys/fs/cgroup/cpu'] },
    ],
    [
      'read-only in a container',
      'cgroup2 /sys/fs/cgroup cgroup2 ro,nosuid 0 0\n',
      { cgroup2: '/sys/fs/cgroup', cgroup2ReadOnly: true, v1: [] },
    ],
    [
      'host view skipped',
      `cgroup2 /host/sys/fs/cgroup cgroup2 rw 0 0\n${unified}`,
      { cgroup2: '/sys/fs/cgroup', cgroup2ReadOnly: false, v1: [] },
    ],
    ['nothing', 'proc /proc proc rw 0 0\n', { cgroup2: null, cgroup2ReadOnly: false, v1: [] }],
  ];
  for (const [name, mounts, want] of cases) assert.deepEqual(parseCgroupSetup(mounts), want, name);
});

test('parseMemlockLimit reads the soft limit', () => {
  const line = (soft: string, hard: string) =>
    `Max open files   1024  4096  files\nMax locked memory ${soft} ${hard} bytes\n`;
  assert.equal(parseMemlockLimit(line('8388608', '8388608')), 8388608n);
  assert.equal(parseMemlockLimit(line('unlimited', 'unlimited')), 'unlimited');
  assert.equal(parseMemlockLimit(line('65536', 'unlimited')), 65536n);
  assert.equal(parseMemlockLimit('Max open files 1024 4096 files\n'), null);
});

/** A machine where everything is fine (this project's CI kind: Debian 12, hybrid cgroups, root). */
function goodFacts(): HostFacts {
  const programTypes: Record<string, number> = {};
  const helpers: Record<string, number> = {};
  for (const p of REQUIRED_PROGRAM_TYPES) {
    programTypes[p.name] = 1;
    for (const h of p.helpers) helpers[`${p.name}/${h}`] = 1;
  }
  return {
    kernelRelease: '6.1.0-18-amd64',
    vmlinuxBtf: true,
    bpffs: { dir: '/sys/fs/bpf', dirExists: true, mounted: true },
    mounts: 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n',
    procStatus: `CapEff:\t${ROOT_CAPS}\n`,
    procLimits: 'Max locked memory 8388608 8388608 bytes\n',
    libbpf: { available: true, version: 'v1.1', major: 1, minor: 1 },
    probes: {
      programTypes,
      helpers,
      mapTypes: Object.fromEntries(REQUIRED_MAP_TYPES.map((m) => [m.name, 1])),
    },
    object: { path: '/ferry/bpf/redirect.bpf.o', loaded: true, compiler: 'Debian clang version 14.0.6' },
    toolsFound: { ip: true, nsenter: true, unshare: true, mount: true },
  };
}

function byName(checks: readonly HostCheck[], name: string): HostCheck {
  const c = checks.find((x) => x.name === name);
  assert.ok(c !== undefined, `check ${name} in ${checks.map((x) => x.name).join(', ')}`);
  return c;
}

test('a good machine: every check ok, one line each, verdict ready', () => {
  const checks = evaluateHost(goodFacts());
  assert.deepEqual(
    checks.filter((c) => c.status !== 'ok'),
    [],
  );
  const helperCount = REQUIRED_PROGRAM_TYPES.reduce((n, p) => n + p.helpers.length, 0);
  assert.equal(checks.length, 7 + REQUIRED_PROGRAM_TYPES.length + helperCount + REQUIRED_MAP_TYPES.length + 2);
  assert.match(byName(checks, 'cgroup2').detail, /unified/);
  assert.match(byName(checks, 'memlock').detail, /not used/);
  const verdict = doctorVerdict(checks);
  assert.equal(verdict.ok, true);
  assert.equal(verdict.line, `verdict: ready: ${checks.length} of ${checks.length} checks ok`);
  const text = formatDoctorText(checks);
  assert.equal(text.split('\n').filter(Boolean).length, checks.length + 1);
  assert.doesNotMatch(text, /fix:|FAIL/);
});

test('each broken fact fails (or warns on) its own check, with the fix', () => {
  const cases: {
    name: string;
    change: (f: HostFacts) => HostFacts;
    check: string;
    status: 'warn' | 'fail';
    detail?: RegExp;
    fix: RegExp;
    /** Other checks the same fact fails. */
    also?: string[];
  }[] = [
    {
      name: 'old kernel',
      change: (f) => ({ ...f, kernelRelease: '5.10.0-28-amd64' }),
      check: 'kernel',
      status: 'fail',
      fix: /kernel ≥ 5\.15/,
      also: ['memlock'], // before 5.11 maps count against RLIMIT_MEMLOCK, and 8 MiB is too low
    },
    {
      name: 'no BTF: the shipped object does not need it',
      change: (f) => ({ ...f, vmlinuxBtf: false }),
      check: 'btf',
      status: 'warn',
      fix: /CONFIG_DEBUG_INFO_BTF/,
    },
    {
      name: 'bpffs not mounted: ferry up mounts it',
      change: (f) => ({ ...f, bpffs: { dir: '/sys/fs/bpf', dirExists: true, mounted: false } }),
      check: 'bpffs',
      status: 'warn',
      detail: /ferry up \(as root\) mounts it/,
      fix: /mount -t bpf bpf \/sys\/fs\/bpf/,
    },
    {
      name: 'no bpffs at all',
      change: (f) => ({ ...f, bpffs: { dir: '/sys/fs/bpf', dirExists: false, mounted: false } }),
      check: 'bpffs',
      status: 'fail',
      fix: /CONFIG_BPF_SYSCALL/,
    },
    {
      name: 'cgroup v1 only',
      change: (f) => ({ ...f, mounts: 'cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n' }),
      check: 'cgroup2',
      status: 'fail',
      detail: /legacy/,
      fix: /systemd\.unified_cgroup_hierarchy=1/,
    },
    {
      name: 'read-only cgroup2',
      change: (f) => ({ ...f, mounts: 'cgroup2 /sys/fs/cgroup cgroup2 ro 0 0\n' }),
      check: 'cgroup2',
      status: 'fail',
      fix: /remount,rw/,
    },
    {
      name: 'no CAP_BPF',
      change: (f) => ({ ...f, procStatus: 'CapEff:\t0000003fffffffff\n' }),
      check: 'capabilities',
      status: 'fail',
      detail: /missing CAP_BPF/,
      fix: /sudo/,
    },
    {
      name: 'low memlock on an old kernel',
      change: (f) => ({ ...f, kernelRelease: '5.4.0', procLimits: 'Max locked memory 65536 65536 bytes\n' }),
      check: 'memlock',
      status: 'fail',
      fix: /ulimit -l unlimited/,
      also: ['kernel'],
    },
    {
      name: 'libbpf 0.x',
      change: (f) => ({ ...f, libbpf: { available: true, version: 'v0.8', major: 0, minor: 8 } }),
      check: 'libbpf',
      status: 'fail',
      fix: /libbpf1/,
    },
    {
      name: 'sk_lookup unsupported',
      change: (f) => withProbe(f, (p) => ({ ...p, programTypes: { ...p.programTypes, sk_lookup: 0 } })),
      check: 'program sk_lookup',
      status: 'fail',
      detail: /not supported/,
      fix: /kernel ≥ 5\.15/,
    },
    {
      name: 'a helper unknown to the kernel',
      change: (f) => withProbe(f, (p) => ({ ...p, helpers: { ...p.helpers, 'sock_ops/get_netns_cookie': 0 } })),
      check: 'helper bpf_get_netns_cookie (sock_ops)',
      status: 'fail',
      fix: /kernel/,
    },
    {
      name: 'a probe refused with EPERM',
      change: (f) => withProbe(f, (p) => ({ ...p, mapTypes: { ...p.mapTypes, sockhash: -1 } })),
      check: 'map sockhash',
      status: 'fail',
      detail: /EPERM/,
      fix: /run as root/,
    },
    {
      name: 'shipped object missing',
      change: (f) => ({ ...f, object: { path: '/x/redirect.bpf.o', loaded: false, missing: true, error: 'missing' } }),
      check: 'object',
      status: 'fail',
      fix: /npm run build:bpf/,
    },
    {
      name: 'verifier refuses the object',
      change: (f) => ({
        ...f,
        object: { path: '/x/redirect.bpf.o', loaded: false, missing: false, error: 'load failed: EINVAL (22)' },
      }),
      check: 'object',
      status: 'fail',
      detail: /EINVAL/,
      fix: /verifier log/,
    },
    {
      name: 'no ip(8)',
      change: (f) => ({ ...f, toolsFound: { ip: false, nsenter: true, unshare: true, mount: true } }),
      check: 'tools',
      status: 'fail',
      detail: /not on PATH: ip/,
      fix: /apt-get install iproute2/,
    },
  ];
  for (const c of cases) {
    const checks = evaluateHost(c.change(goodFacts()));
    const got = byName(checks, c.check);
    assert.equal(got.status, c.status, c.name);
    if (c.detail !== undefined) assert.match(got.detail, c.detail, c.name);
    assert.match(got.fix ?? '', c.fix, c.name);
    const others = checks.filter((x) => x.status !== 'ok' && x.name !== c.check);
    assert.deepEqual(
      others.map((x) => x.name),
      c.also ?? [],
      `${c.name}: which other checks are affected`,
    );
    assert.equal(doctorVerdict(checks).ok, c.status === 'warn', c.name);
  }
});

function withProbe(f: HostFacts, change: (p: NonNullable<HostFacts['probes']>) => HostFacts['probes']): HostFacts {
  assert.ok(f.probes !== null);
  return { ...f, probes: change(f.probes) };
}

test('without libbpf or without privileges nothing is probed, and one check says why', () => {
  const noLibbpf = evaluateHost({
    ...goodFacts(),
    libbpf: { available: false, error: 'cannot load libbpf.so.1' },
    probes: null,
    object: null,
  });
  assert.deepEqual(
    noLibbpf.filter((c) => c.status !== 'ok').map((c) => [c.name, c.fix]),
    [['libbpf', 'apt-get install libbpf1']],
  );
  assert.ok(!noLibbpf.some((c) => c.name.startsWith('program ') || c.name === 'bpf features'));

  const unprivileged = evaluateHost({
    ...goodFacts(),
    procStatus: 'CapEff:\t0000000000000000\n',
    probes: null,
    object: null,
  });
  assert.deepEqual(
    unprivileged.filter((c) => c.status !== 'ok').map((c) => c.name),
    ['capabilities', 'bpf features'],
  );
  assert.equal(byName(unprivileged, 'bpf features').fix, 'run as root: sudo ./bin/ferry doctor');
});

test('verdict and text: FAIL lines carry their fix, warnings do not fail the verdict', () => {
  const checks: HostCheck[] = [
    { name: 'kernel', status: 'ok', detail: '6.1' },
    { name: 'bpffs', status: 'warn', detail: 'not mounted', fix: 'mount -t bpf bpf /sys/fs/bpf' },
    { name: 'capabilities', status: 'fail', detail: 'missing CAP_BPF', fix: 'run as root' },
    { name: 'tools', status: 'fail', detail: 'not on PATH: ip', fix: 'apt-get install iproute2' },
  ];
  const verdict = doctorVerdict(checks);
  assert.equal(verdict.ok, false);
  assert.deepEqual(verdict.failed, ['capabilities', 'tools']);
  assert.equal(
    verdict.line,
    'verdict: NOT ready: 2 of 4 checks failed (capabilities, tools), 1 warning (bpffs); fix them as shown above',
  );
  assert.equal(
    formatDoctorText(checks),
    [
      'ok    kernel: 6.1',
      'warn  bpffs: not mounted',
      '      fix: mount -t bpf bpf /sys/fs/bpf',
      'FAIL  capabilities: missing CAP_BPF',
      '      fix: run as root',
      'FAIL  tools: not on PATH: ip',
      '      fix: apt-get install iproute2',
      verdict.line,
      '',
    ].join('\n'),
  );
  assert.equal(doctorVerdict(checks.slice(0, 2)).line, 'verdict: ready: 1 of 2 checks ok, 1 warning (bpffs)');
});

test('the requirement tables cover every helper, map type and section of bpf/redirect.bpf.c', () => {
  const source = readFileSync(`${BPF_SOURCE_DIR}/redirect.bpf.c`, 'utf8');
  const endian = new Set(['htons', 'ntohs', 'htonl', 'ntohl']);
  const called = new Set(
    [...source.matchAll(/\bbpf_([a-z0-9_]+)\(/g)].map((m) => m[1] as string).filter((h) => !endian.has(h)),
  );
  const probed = new Set(REQUIRED_PROGRAM_TYPES.flatMap((p) => p.helpers));
  assert.deepEqual([...called].sort(), [...probed].sort(), 'helpers called in the C vs probed');
  assert.deepEqual(Object.keys(BPF_HELPER_IDS).sort(), [...probed].sort(), 'every probed helper has an id');

  const mapTypes = new Set([...source.matchAll(/__uint\(type, BPF_MAP_TYPE_([A-Z_]+)\)/g)].map((m) => m[1]));
  assert.deepEqual([...mapTypes].map((t) => t?.toLowerCase()).sort(), REQUIRED_MAP_TYPES.map((m) => m.name).sort());

  const sections = [...source.matchAll(/^SEC\("([^"]+)"\)/gm)].map((m) => m[1]);
  assert.deepEqual(sections.sort(), REQUIRED_PROGRAM_TYPES.flatMap((p) => p.sections).sort());
});

test('helper, program type and map type numbers match linux/bpf.h (when the headers are installed)', (t) => {
  const header = '/usr/include/linux/bpf.h';
  if (!existsSync(header)) {
    t.skip(`${header} not installed (linux-libc-dev)`);
    return;
  }
  const text = readFileSync(header, 'utf8');
  const enumBody = (name: string) => {
    const start = text.indexOf(`enum ${name} {`);
    assert.ok(start >= 0, name);
    return text.slice(start, text.indexOf('};', start));
  };
  const ordinal = (body: string, constant: string) => {
    const names = [...body.matchAll(/^\s*(BPF_[A-Z0-9_]+)\s*(?:=\s*\d+)?\s*,/gm)].map((m) => m[1]);
    return names.indexOf(constant);
  };
  for (const p of REQUIRED_PROGRAM_TYPES) {
    assert.equal(ordinal(enumBody('bpf_prog_type'), `BPF_PROG_TYPE_${p.name.toUpperCase()}`), p.type, p.name);
  }
  for (const m of REQUIRED_MAP_TYPES) {
    assert.equal(ordinal(enumBody('bpf_map_type'), `BPF_MAP_TYPE_${m.name.toUpperCase()}`), m.type, m.name);
  }
  // Helper ids: the order of FN(name) in the helper mapper macro (later headers also spell out FN(name, id)).
  const mapper = text.slice(text.indexOf('_BPF_FUNC_MAPPER('));
  const helpers = [...mapper.matchAll(/FN\(([a-z0-9_]+)(?:, \d+)?/g)].map((m) => m[1]);
  for (const [name, id] of Object.entries(BPF_HELPER_IDS)) assert.equal(helpers.indexOf(name), id, name);
});
