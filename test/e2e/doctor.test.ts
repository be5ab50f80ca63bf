// `./bin/ferry doctor` on this machine (the project's CI kind: every check ok, exit 0, text and --json
// agree), and the fresh-machine case without bpffs, run in a private mount namespace so the host's
// /sys/fs/bpf (other tests' pins) is never touched: doctor warns with the fix and still passes, and
// `ferry up` mounts bpffs itself and says so (docs/operations.md, "ferry doctor").
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { HostCheck } from '../../src/redirect-bpf/host-checks.ts';
import { privilegedTest } from '../../testkit/privileged.ts';
import { BIN_FERRY } from '../helpers/cluster-cli.ts';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

interface DoctorJson {
  readonly ok: boolean;
  readonly verdict: string;
  readonly checks: readonly HostCheck[];
}

const EXPECTED_CHECKS = [
  'kernel',
  'btf',
  'bpffs',
  'cgroup2',
  'capabilities',
  'memlock',
  'libbpf',
  'program cgroup_sock_addr',
  'program sock_ops',
  'program sk_lookup',
  'helper bpf_get_current_ancestor_cgroup_id (cgroup_sock_addr)',
  'helper bpf_get_netns_cookie (sock_ops)',
  'helper bpf_sk_assign (sk_lookup)',
  'map lru_hash',
  'map sockhash',
  'object',
  'tools',
];

privilegedTest('ferry doctor on this machine: every check ok, a ready verdict, exit 0', async () => {
  const text = await run(BIN_FERRY, ['doctor']);
  assert.equal(text.code, 0, text.stdout + text.stderr);
  const lines = text.stdout.trimEnd().split('\n');
  const verdict = lines.pop() ?? '';
  assert.match(verdict, /^verdict: ready: (\d+) of \1 checks ok$/);
  assert.deepEqual(
    lines.filter((l) => !l.startsWith('ok    ')),
    [],
  );

  const json = await run(BIN_FERRY, ['doctor', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as DoctorJson;
  assert.equal(report.ok, true);
  assert.equal(report.verdict, verdict);
  assert.equal(report.checks.length, lines.length);
  assert.deepEqual(
    report.checks.filter((c) => c.status !== 'ok'),
    [],
  );
  const names = new Set(report.checks.map((c) => c.name));
  for (const name of EXPECTED_CHECKS) assert.ok(names.has(name), `check ${name}`);
});

privilegedTest('without bpffs: doctor warns with the fix, and ferry up mounts it and says so', async (t) => {
  const dir = mkdtempSync('/tmp/ferrytest-bpffs-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Inside a private mount namespace only: unmount every bpffs on /sys/fs/bpf, then run what a user would.
  // `up` gets manifests that do not exist, so it stops after its host checks and creates nothing.
  const script = [
    'while umount /sys/fs/bpf 2>/dev/null; do :; done',
    'stat -f -c %T /sys/fs/bpf > "$2/before"',
    '"$1" doctor --json > "$2/doctor.json"; echo $? > "$2/doctor.rc"',
    '"$1" up -f "$2/no-such-manifests" --cluster "$3" > "$2/up.out" 2>&1; echo $? > "$2/up.rc"',
    'stat -f -c %T /sys/fs/bpf > "$2/after"',
  ].join('\n');
  const cluster = `ferrytest-${process.pid}-bpffs`;
  const env = { ...process.env, FERRY_STATE_DIR: join(dir, 'state') };
  const r = await run(
    'unshare',
    ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', BIN_FERRY, dir, cluster],
    env,
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const read = (name: string) => readFileSync(join(dir, name), 'utf8').trim();
  assert.notEqual(read('before'), 'bpf_fs', 'the private namespace starts without bpffs');

  assert.equal(read('doctor.rc'), '0', 'a missing bpffs is a warning: ferry up mounts it');
  const doctor = JSON.parse(read('doctor.json')) as DoctorJson;
  const bpffs = doctor.checks.find((c) => c.name === 'bpffs');
  assert.equal(bpffs?.status, 'warn');
  assert.match(bpffs?.fix ?? '', /mount -t bpf bpf \/sys\/fs\/bpf/);
  assert.match(doctor.verdict, /^verdict: ready: .*1 warning \(bpffs\)$/);

  const up = read('up.out');
  assert.match(up, /bpffs: \/sys\/fs\/bpf had no bpf filesystem: mounted one \(mount -t bpf bpf \/sys\/fs\/bpf\)/);
  assert.doesNotMatch(up, /FERRY_CLUSTER_UNSUPPORTED_HOST/);
  assert.match(up, /FERRY_LOCAL_BAD_MANIFESTS/, 'then it stopped at the manifests, as asked');
  assert.equal(read('up.rc'), '1');
  assert.equal(read('after'), 'bpf_fs');
});
