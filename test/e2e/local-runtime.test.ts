// End to end through the CLI: `ferry up --spec` builds a 2-node local cluster, pods reach each other across
// nodes by IP (http-echo + the built-in curl via `ferry exec`), and `ferry down` leaves no netns, cgroup,
// pin, state or process behind: after kill -9 of every process, after a crash in the middle of `up`, with
// the state file gone, and when run twice. Cluster names are `ferrytest-<pid>-…`; teardown is registered
// before `up` runs, so a failing test still cleans up; leftovers of dead test runs are swept first.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { on, once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cgroup2MountPoint } from '../../src/redirect-bpf/probe.ts';
import { privilegedTest, privilegeProblem } from '../../testkit/privileged.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const STATE_ROOT = mkdtempSync('/tmp/ferry-e2e-state-');
const ENV = { ...process.env, FERRY_STATE_DIR: STATE_ROOT };

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function ferry(args: readonly string[], opts: { asNobody?: boolean } = {}): Promise<Run> {
  const [cmd, argv] =
    opts.asNobody === true
      ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, MAIN, ...args]]
      : [process.execPath, [MAIN, ...args]];
  return new Promise((resolve) => {
    execFile(cmd, argv, { env: ENV, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

function cgroupSlice(): string {
  const root = cgroup2MountPoint();
  assert.ok(root !== null, 'cgroup2 mount');
  return join(root, 'ferry.slice');
}

/** Everything of a cluster that may be left on the machine, as readable names. */
function leftovers(cluster: string, pids: readonly number[] = []): string[] {
  const out: string[] = [];
  const netnsDir = '/run/netns';
  if (existsSync(netnsDir)) {
    out.push(
      ...readdirSync(netnsDir)
        .filter((n) => n.startsWith(`ferry-${cluster}_`))
        .map((n) => `netns ${n}`),
    );
  }
  if (existsSync(join(cgroupSlice(), cluster))) out.push(`cgroup ${join(cgroupSlice(), cluster)}`);
  if (existsSync(`/sys/fs/bpf/ferry-${cluster}`)) out.push(`pins /sys/fs/bpf/ferry-${cluster}`);
  if (existsSync(join(STATE_ROOT, cluster))) out.push(`state ${join(STATE_ROOT, cluster)}`);
  if (existsSync('/etc/netns')) {
    out.push(
      ...readdirSync('/etc/netns')
        .filter((n) => n.startsWith(`ferry-${cluster}_`))
        .map((n) => `/etc/netns/${n}`),
    );
  }
  for (const pid of [...pids, ...processesOf(cluster)]) if (isRunning(pid)) out.push(`pid ${pid}`);
  return [...new Set(out)];
}

/** Processes anywhere in the cluster's cgroup tree (read from /proc, so also escaped-subtree ones). */
function processesOf(cluster: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cgroup`, 'utf8').includes(`/ferry.slice/${cluster}/`)) out.push(Number(entry));
    } catch {
      // exited
    }
  }
  return out;
}

function isRunning(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** A unique cluster, torn down (and checked clean) after the test, also when it failed. */
function newCluster(t: TestContext, name: string): string {
  const cluster = `ferrytest-${process.pid}-${name}`;
  t.after(async () => {
    const down = await ferry(['down', '--cluster', cluster]);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(leftovers(cluster), []);
  });
  return cluster;
}

function writeSpec(name: string, pods: readonly object[]): string {
  const file = join(STATE_ROOT, `${name}.yaml`);
  writeFileSync(file, JSON.stringify({ nodes: 2, pods }));
  return file;
}

const ECHO_A = {
  namespace: 'default',
  name: 'echo-a',
  node: 0,
  containers: [{ name: 'echo', image: 'ferry/echo', ports: [8080] }],
};
const ECHO_B = {
  namespace: 'default',
  name: 'echo-b',
  node: 1,
  containers: [{ name: 'echo', image: 'hashicorp/http-echo' }],
};
const CLIENT = {
  namespace: 'client',
  name: 'curl',
  node: 1,
  containers: [{ name: 'curl', image: 'curlimages/curl', command: ['sleep', 'infinity'] }],
};

/** Resolves once the container's log file contains `text` (fs.watch on the log dir; no polling). */
async function waitForLog(cluster: string, file: string, text: string, signal: AbortSignal): Promise<void> {
  const dir = join(STATE_ROOT, cluster, 'logs');
  const watcher = watch(dir);
  try {
    const changes = on(watcher, 'change', { signal });
    const path = join(dir, file);
    while (!(existsSync(path) && readFileSync(path, 'utf8').includes(text))) await changes.next();
  } finally {
    watcher.close();
  }
}

async function upAndWait(t: TestContext, cluster: string, spec: string): Promise<void> {
  const up = await ferry(['up', '--spec', spec, '--cluster', cluster]);
  assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
  await waitForLog(cluster, 'default_echo-a_echo.log', '"listening"', t.signal);
  await waitForLog(cluster, 'default_echo-b_echo.log', '"listening"', t.signal);
}

before(async () => {
  if (privilegeProblem() !== null) return;
  // Clusters of dead test runs: `down` sweeps by name, so no state file is needed.
  const slice = cgroupSlice();
  for (const name of existsSync(slice) ? readdirSync(slice) : []) {
    const pid = /^ferrytest-(\d+)-/.exec(name)?.[1];
    if (pid !== undefined && Number(pid) !== process.pid && !isRunning(Number(pid))) {
      await ferry(['down', '--cluster', name]);
    }
  }
});

test.after(() => rmSync(STATE_ROOT, { recursive: true, force: true }));

privilegedTest('pods on different nodes reach each other by IP; the echo names the pod', async (t) => {
  const cluster = newCluster(t, 'reach');
  await upAndWait(t, cluster, writeSpec(cluster, [ECHO_A, ECHO_B, CLIENT]));

  // client (node 1) → echo-a (node 0): the reply names the pod and shows the client's pod IP as peer.
  const a = await ferry([
    'exec',
    '--cluster',
    cluster,
    'client/curl',
    '--',
    'curl',
    'http://10.244.0.2:8080/hello?x=1',
  ]);
  assert.equal(a.code, 0, a.stderr);
  const [status, body] = a.stdout.split('\n');
  assert.equal(status, 'HTTP 200');
  const echo = JSON.parse(body ?? '') as { pod: string; path: string; peer: { address: string } };
  assert.equal(echo.pod, 'echo-a');
  assert.equal(echo.path, '/hello');
  assert.equal(echo.peer.address, '10.244.1.3');

  // echo-a (node 0) → echo-b (node 1), the other direction across nodes.
  const b = await ferry(['exec', '--cluster', cluster, 'default/echo-a', '--', 'curl', 'http://10.244.1.2:5678/']);
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stdout, /"pod":"echo-b"/);
  assert.match(b.stdout, /"address":"10\.244\.0\.2"/);

  // exec runs in the pod's cgroup (so the redirector would capture it) …
  const cg = await ferry(['exec', '--cluster', cluster, 'client/curl', '--', 'cat', '/proc/self/cgroup']);
  assert.match(cg.stdout, new RegExp(`^0::/ferry\\.slice/${cluster}/pods/node-1/client_curl$`, 'm'));
  // … and a Service VIP from an unenrolled pod fails at once instead of hanging.
  const vip = await ferry(['exec', '--cluster', cluster, 'client/curl', '--', 'curl', 'http://10.96.0.10:80/']);
  assert.equal(vip.code, 7);
  assert.match(vip.stderr, /EHOSTUNREACH/);

  const missing = await ferry(['exec', '--cluster', cluster, 'client/nope', '--', 'true']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /FERRY_CLUSTER_POD_NOT_FOUND.*client\/curl/);
  const again = await ferry(['up', '--spec', writeSpec(`${cluster}-2`, [CLIENT]), '--cluster', cluster]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /FERRY_CLUSTER_EXISTS/);
});

privilegedTest('ferry down after kill -9 of every process leaves nothing behind, and twice is fine', async (t) => {
  const cluster = newCluster(t, 'kill9');
  await upAndWait(t, cluster, writeSpec(cluster, [ECHO_A, ECHO_B, CLIENT]));
  // A process that entered a pod's netns without its cgroup (as `ip netns exec` does) must go too.
  const stray = spawn('ip', ['netns', 'exec', `ferry-${cluster}_client_curl`, 'sleep', 'infinity'], {
    stdio: 'ignore',
    detached: true,
  });
  await once(stray, 'spawn');
  stray.unref();
  // The BPF pin root a node ztunnel would have made.
  mkdirSync(`/sys/fs/bpf/ferry-${cluster}/links`, { recursive: true });

  const pids = processesOf(cluster);
  assert.ok(pids.length >= 3, `expected the containers' processes, got ${pids.join(',')}`);
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  assert.ok(stray.pid !== undefined);

  const down = await ferry(['down', '--cluster', cluster]);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, /removed netns/);
  assert.deepEqual(leftovers(cluster, [...pids, stray.pid]), []);
  const twice = await ferry(['down', '--cluster', cluster]);
  assert.equal(twice.code, 0, twice.stderr);
  assert.match(twice.stdout, /nothing to remove/);
});

privilegedTest('a crash in the middle of up (kill -9) is cleaned up by down', async (t) => {
  const cluster = newCluster(t, 'crash');
  const spec = writeSpec(cluster, [ECHO_A, ECHO_B, CLIENT]);
  const up = spawn(process.execPath, [MAIN, 'up', '--spec', spec, '--cluster', cluster], {
    env: ENV,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => up.kill('SIGKILL'));
  let seen = '';
  for await (const chunk of up.stdout.setEncoding('utf8')) {
    seen += String(chunk);
    if (seen.includes('pod default/echo-b')) break; // echo-a is running, echo-b's network half made
  }
  up.kill('SIGKILL');
  await once(up, 'exit');
  assert.ok(leftovers(cluster).length > 0, 'up should have left objects behind');
  const down = await ferry(['down', '--cluster', cluster]);
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(leftovers(cluster), []);
});

privilegedTest('down without a state file still sweeps the cluster by name', async (t) => {
  const cluster = newCluster(t, 'nostate');
  await upAndWait(t, cluster, writeSpec(cluster, [ECHO_A, ECHO_B]));
  rmSync(join(STATE_ROOT, cluster), { recursive: true });
  const down = await ferry(['down', '--cluster', cluster]);
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(leftovers(cluster), []);
});

test('up, down and exec without root fail with a clear message', async (t) => {
  const asRoot = process.getuid?.() === 0;
  if (asRoot && !existsSync('/usr/bin/setpriv')) {
    t.skip('root, and no setpriv to drop privileges');
    return;
  }
  const spec = writeSpec(`ferrytest-${process.pid}-nonroot`, [CLIENT]);
  for (const args of [['up', '--spec', spec], ['down'], ['exec', 'client/curl', '--', 'true']]) {
    const r = await ferry([...args, '--cluster', `ferrytest-${process.pid}-nonroot`], { asNobody: asRoot });
    assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /FERRY_CLUSTER_NOT_ROOT: the local cluster needs root/);
  }
  assert.deepEqual(leftovers(`ferrytest-${process.pid}-nonroot`), []);
});
