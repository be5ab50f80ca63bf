// End to end through the CLI: `ferry up -f` runs the mesh from Kubernetes manifests on a 2-node local
// cluster (controller + one ztunnel per node in BPF in-pod mode). Checked as a user would: a meshed client
// reaches the echo Service VIP and the destination ztunnel logs the client's SPIFFE identity (mTLS); a
// non-mesh client reaches an enrolled pod by IP (PERMISSIVE); `ferry label` unenrolls and re-enrolls live;
// a DENY policy applied with `ferry apply` takes effect; the CA refuses a node token asking for an identity
// not on its node; `ferry down` after kill -9 of every Ferry process leaves nothing behind. Clusters are
// `ferrytest-<pid>-…`, torn down (and checked clean) in t.after, also when the test fails.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { on } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CaClient } from '../../src/identity/ca-client.ts';
import { parseSpiffeId } from '../../src/identity/spiffe-id.ts';
import type { MeshStatus } from '../../src/local-cluster/controller/admin-api.ts';
import { readMeshConfig } from '../../src/local-cluster/controller/mesh-files.ts';
import { cgroup2MountPoint } from '../../src/redirect-bpf/probe.ts';
import { privilegedTest } from '../../testkit/privileged.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const MANIFESTS = fileURLToPath(new URL('./fixtures/mesh-basic', import.meta.url));
const STATE_ROOT = mkdtempSync('/tmp/ferry-e2e-mesh-');
const ENV = { ...process.env, FERRY_STATE_DIR: STATE_ROOT };
test.after(() => rmSync(STATE_ROOT, { recursive: true, force: true }));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function ferry(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env: ENV, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

function leftovers(cluster: string): string[] {
  const out: string[] = [];
  if (existsSync('/run/netns')) {
    out.push(...readdirSync('/run/netns').filter((n) => n.startsWith(`ferry-${cluster}_`)));
  }
  const root = cgroup2MountPoint();
  if (root !== null && existsSync(join(root, 'ferry.slice', cluster))) out.push(`cgroup ${cluster}`);
  if (existsSync(`/sys/fs/bpf/ferry-${cluster}`)) out.push(`pins /sys/fs/bpf/ferry-${cluster}`);
  if (existsSync(join(STATE_ROOT, cluster))) out.push(`state ${cluster}`);
  if (existsSync('/etc/netns')) {
    out.push(
      ...readdirSync('/etc/netns')
        .filter((n) => n.startsWith(`ferry-${cluster}_`))
        .map((n) => `/etc/netns/${n}`),
    );
  }
  out.push(...processesOf(cluster).map((p) => `pid ${p}`));
  return out;
}

function processesOf(cluster: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cg = readFileSync(`/proc/${entry}/cgroup`, 'utf8');
      const state = readFileSync(`/proc/${entry}/status`, 'utf8');
      if (cg.includes(`/ferry.slice/${cluster}/`) && !/^State:\s+Z/m.test(state)) out.push(Number(entry));
    } catch {
      // exited
    }
  }
  return out;
}

/** A unique cluster brought up from the manifests; torn down and checked clean after the test. */
async function upMesh(t: TestContext, name: string): Promise<{ cluster: string; up: Run }> {
  const cluster = `ferrytest-${process.pid}-${name}`;
  t.after(async () => {
    const down = await ferry(['down', '--cluster', cluster]);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(leftovers(cluster), []);
  });
  const up = await ferry(['up', '-f', MANIFESTS, '--nodes', '2', '--cluster', cluster]);
  assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
  return { cluster, up };
}

async function status(cluster: string): Promise<MeshStatus> {
  const r = await ferry(['status', '--json', '--cluster', cluster]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as MeshStatus;
}

async function curl(cluster: string, pod: string, url: string): Promise<{ run: Run; echo: EchoReply | null }> {
  const run = await ferry(['exec', '--cluster', cluster, pod, '--', 'curl', '-s', url]);
  const [first, body] = run.stdout.split('\n');
  return { run, echo: first === 'HTTP 200' && body !== undefined ? (JSON.parse(body) as EchoReply) : null };
}

interface EchoReply {
  readonly pod: string;
  readonly peer: { readonly address: string };
}

/** Resolves with the first JSON log line of `file` matching (fs.watch on the log dir; no polling). */
async function waitForLogLine(
  cluster: string,
  file: string,
  match: (l: Record<string, unknown>) => boolean,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  const dir = join(STATE_ROOT, cluster, 'logs');
  const watcher = watch(dir);
  try {
    const changes = on(watcher, 'change', { signal });
    for (;;) {
      const lines = readFileSync(join(dir, file), 'utf8').split('\n');
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (match(parsed)) return parsed;
      }
      await changes.next();
    }
  } finally {
    watcher.close();
  }
}

const CLIENT_ID = 'spiffe://cluster.local/ns/apps/sa/client';

privilegedTest(
  'ferry up -f: mTLS through the VIP, PERMISSIVE by IP, live relabel, apply DENY, node-bound CA',
  async (t) => {
    const { cluster, up } = await upMesh(t, 'mesh');
    assert.match(
      up.stdout,
      /apps\/client\s+node-\d\s+10\.244\.\d+\.\d+\s+enrolled\s+spiffe:\/\/cluster\.local\/ns\/apps\/sa\/client/,
    );
    assert.match(up.stdout, /legacy\/client .* not in mesh/);

    const s = await status(cluster);
    const pod = (ns: string, name: string) => {
      const p = s.pods.find((x) => x.namespace === ns && x.name === name);
      assert.ok(p !== undefined, `${ns}/${name} in status`);
      return p;
    };
    assert.equal(s.pods.length, 4);
    assert.notEqual(pod('apps', 'echo-0').node, pod('apps', 'echo-1').node, 'replicas spread over the nodes');
    for (const name of ['client', 'echo-0', 'echo-1']) assert.equal(pod('apps', name).enrolled, true, name);
    assert.equal(pod('legacy', 'client').enrolled, false);
    const vip = s.services.find((x) => x.name === 'echo')?.vip;
    assert.ok(vip !== null && vip !== undefined);

    // Meshed client → Service VIP: mTLS, and the destination ztunnel logs the client's SPIFFE identity.
    const viaVip = await curl(cluster, 'apps/client', `http://${vip}:80/`);
    assert.ok(viaVip.echo !== null, viaVip.run.stdout + viaVip.run.stderr);
    assert.equal(viaVip.echo.peer.address, '127.0.0.6', 'delivered by the destination ztunnel');
    const dstNode = pod('apps', viaVip.echo.pod).node;
    const access = await waitForLogLine(
      cluster,
      `ztunnel-${dstNode}.log`,
      (l) => l.scope === 'access' && l.direction === 'inbound' && l['src.identity'] === CLIENT_ID,
      t.signal,
    );
    assert.equal(access['dst.workload'], viaVip.echo.pod);

    // Non-mesh client → enrolled pod by IP: PERMISSIVE lets plaintext in; no identity is logged.
    const echo0 = pod('apps', 'echo-0');
    const plain = await curl(cluster, 'legacy/client', `http://${echo0.ip}:8080/`);
    assert.ok(plain.echo !== null, plain.run.stdout + plain.run.stderr);
    const plainLog = await waitForLogLine(
      cluster,
      `ztunnel-${echo0.node}.log`,
      (l) => l.scope === 'access' && l['src.namespace'] === 'legacy',
      t.signal,
    );
    assert.equal(plainLog['src.identity'], undefined);

    // A second `up` on the running cluster changes nothing and says so.
    const again = await ferry(['up', '-f', MANIFESTS, '--cluster', cluster]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already up: nothing changed/);

    // Live unenrollment: no restart, traffic still flows (now plaintext: the echo sees the client's own IP).
    const unlabel = await ferry(['label', 'namespace', 'apps', 'istio.io/dataplane-mode-', '--cluster', cluster]);
    assert.equal(unlabel.code, 0, unlabel.stdout + unlabel.stderr);
    const after = await status(cluster);
    assert.ok(after.pods.filter((p) => p.namespace === 'apps').every((p) => !p.enrolled && !p.meshed));
    const unmeshed = await curl(cluster, 'apps/client', `http://${echo0.ip}:8080/`);
    assert.ok(unmeshed.echo !== null, unmeshed.run.stdout + unmeshed.run.stderr);
    assert.equal(unmeshed.echo.peer.address, pod('apps', 'client').ip);
    // Re-enrollment: mTLS again through the VIP.
    const relabel = await ferry(['label', 'ns', 'apps', 'istio.io/dataplane-mode=ambient', '--cluster', cluster]);
    assert.equal(relabel.code, 0, relabel.stdout + relabel.stderr);
    assert.ok((await status(cluster)).pods.filter((p) => p.namespace === 'apps').every((p) => p.enrolled));
    const remeshed = await curl(cluster, 'apps/client', `http://${vip}:80/`);
    assert.ok(remeshed.echo !== null, remeshed.run.stdout + remeshed.run.stderr);
    assert.equal(remeshed.echo.peer.address, '127.0.0.6');

    // `ferry apply` of a DENY policy: the client's requests to the echo fail; others' do not.
    const policy = join(STATE_ROOT, `${cluster}-deny.yaml`);
    writeFileSync(
      policy,
      [
        'apiVersion: security.istio.io/v1',
        'kind: AuthorizationPolicy',
        'metadata: {name: deny-client, namespace: apps}',
        'spec:',
        '  selector: {matchLabels: {app: echo}}',
        '  action: DENY',
        '  rules: [{from: [{source: {principals: ["cluster.local/ns/apps/sa/client"]}}]}]',
      ].join('\n'),
    );
    const apply = await ferry(['apply', '-f', policy, '--cluster', cluster]);
    assert.equal(apply.code, 0, apply.stdout + apply.stderr);
    const latency = /every ztunnel has the change \((\d+) ms\)/.exec(apply.stdout);
    assert.ok(latency !== null, apply.stdout);
    t.diagnostic(`ferry apply → ACK from every ztunnel: ${latency[1]} ms`);
    const denied = await curl(cluster, 'apps/client', `http://${vip}:80/`);
    assert.equal(denied.echo, null, `expected a refusal, got ${denied.run.stdout}`);
    assert.notEqual(denied.run.code, 0);
    const stillOk = await curl(cluster, 'legacy/client', `http://${echo0.ip}:8080/`);
    assert.ok(stillOk.echo !== null, 'the DENY names only the meshed client');
    assert.match((await ferry(['status', '--cluster', cluster])).stdout, /apps\/deny-client\s+Deny/);

    // Node-bound CA: node-0's token gets identities of node-0's pods only.
    const mesh = await readMeshConfig(join(STATE_ROOT, cluster));
    const clientNode = pod('apps', 'client').node;
    const [own, other] = [clientNode, clientNode === 'node-0' ? 'node-1' : 'node-0'].map((n) => {
      const found = mesh.nodes.find((x) => x.name === n);
      assert.ok(found !== undefined);
      return found;
    });
    assert.ok(own !== undefined && other !== undefined);
    const caFor = (token: string) =>
      CaClient.create({
        address: mesh.controller.ca,
        roots: { file: join(STATE_ROOT, cluster, 'ca', 'root-cert.pem') },
        token,
      });
    const clientId = parseSpiffeId(CLIENT_ID);
    assert.ok(clientId.ok);
    const ownCa = await caFor(own.token);
    t.after(() => ownCa.close());
    const cert = await ownCa.fetch(clientId.value);
    assert.ok(cert.certChainPem.length > 0);
    const otherCa = await caFor(other.token);
    t.after(() => otherCa.close());
    await assert.rejects(otherCa.fetch(clientId.value), (err: { code?: string; message?: string }) => {
      assert.match(String(err.message), /FERRY_CA_IDENTITY_NOT_ON_NODE/);
      return true;
    });
    await waitForLogLine(
      cluster,
      'controller.log',
      (l) => l.code === 'FERRY_CA_IDENTITY_NOT_ON_NODE' && l.node === other.name,
      t.signal,
    );
  },
);

privilegedTest('ferry down after kill -9 of every Ferry process leaves nothing behind', async (t) => {
  const { cluster } = await upMesh(t, 'kill9');
  const pids = processesOf(cluster);
  assert.ok(pids.length >= 7, `controller, 2 ztunnels and 4 containers expected, got ${pids.length}`);
  assert.ok(existsSync(`/sys/fs/bpf/ferry-${cluster}/node-0`), 'node-0 pins');
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  const down = await ferry(['down', '--cluster', cluster]);
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(leftovers(cluster), []);
});
