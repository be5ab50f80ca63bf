// Hitless replacement of node agent ztunnels (issue 14 §2, "Node agent restart and DaemonSet rollout") on
// `ferry up --api`: `ferry rollout restart ztunnel` does on each node what a DaemonSet rollout with
// maxSurge=1/maxUnavailable=0 does on a real node (the new ztunnel beside the old one, then the old one
// terminated and drained). The new process keeps no state file: it rebuilds its enrollments from the pinned
// BPF maps and the API, as the chart runs it. Request loops (~50 req/s each, by pod IP: the meshed client
// to the echo on the other node and to the one on its own node, the outsider to an echo) run through two
// rounds on both nodes: zero requests may fail, every answer of the meshed client came over mTLS (the echo
// saw 127.0.0.6), and afterwards every ambient pod is enrolled in the new processes.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { privilegedTest } from '../../testkit/privileged.ts';
import { type ApiPodRow, apiPods, demoClientAndEchoes, until } from '../helpers/api-cluster.ts';
import { DEMO, FerryCli, processesOf } from '../helpers/cluster-cli.ts';
import { phases, startRequestLoop, tally } from '../helpers/request-loops.ts';

const cli = new FerryCli('rollout-api');
test.after(() => cli.remove());

const LABEL = 'istio.io/dataplane-mode';
const ZTUNNELS = ['ztunnel-node-0', 'ztunnel-node-1'];

const demoPods = async (cluster: string): Promise<ApiPodRow[]> =>
  (await apiPods(cli, cluster)).filter((p) => p.namespace === 'demo');

type LogLine = Record<string, unknown>;

function logLines(stateDir: string, file: string): LogLine[] {
  const path = join(stateDir, 'logs', file);
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

privilegedTest('ferry up --api: rolling the node agent ztunnels twice fails zero requests', async (t) => {
  const { cluster } = await cli.up(t, 'roll-api', DEMO, 2, ['--api']);
  const stateDir = join(cli.stateRoot, cluster);
  const labelled = await cli.run(['label', '--cluster', cluster, 'namespace', 'demo', `${LABEL}=ambient`]);
  assert.equal(labelled.code, 0, labelled.stdout + labelled.stderr);
  await until('demo pods enrolled', async () => (await demoPods(cluster)).every((p) => p.enrolled));

  const { client, remote, local } = await demoClientAndEchoes(cli, cluster);
  // The controller announces the pods as HBONE once annotated: from then on the calls are over mTLS.
  await until('calls over mTLS', async () => {
    const r = await cli.curl(cluster, `demo/${client.name}`, `http://${remote.ip}:8080/`);
    return r.echo?.peer.address === '127.0.0.6';
  });

  const loop = (pod: string, ip: string) => startRequestLoop(t, cli, cluster, pod, `http://${ip}:8080/`);
  const loops = {
    crossNode: loop(`demo/${client.name}`, remote.ip),
    sameNode: loop(`demo/${client.name}`, local.ip),
    outsider: loop('legacy/outsider', remote.ip),
  };
  await Promise.all(Object.values(loops).map((l) => l.firstOutput));

  /** Each node's ztunnel pid, old → new, as the rollout printed it. */
  const replaced = new Map<string, { oldPid: number; pid: number }[]>();
  for (const round of [1, 2]) {
    const r = await cli.run(['rollout', 'restart', 'ztunnel', '--cluster', cluster]);
    t.diagnostic(`round ${round}:\n${r.stdout.trim()}`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const role of ZTUNNELS) {
      const m = new RegExp(`${role}: replaced \\(pid (\\d+) → (\\d+)`).exec(r.stdout);
      assert.ok(m !== null, `${role} replaced in round ${round}: ${r.stdout}`);
      replaced.set(role, [...(replaced.get(role) ?? []), { oldPid: Number(m[1]), pid: Number(m[2]) }]);
    }
  }
  // A few more requests through the final processes, then the loops stop.
  for (let i = 0; i < 3; i++) {
    const r = await cli.curl(cluster, `demo/${client.name}`, `http://${remote.ip}:8080/`);
    assert.equal(r.echo?.peer.address, '127.0.0.6', r.run.stdout + r.run.stderr);
  }
  const results = {
    crossNode: tally(await loops.crossNode.stop()),
    sameNode: tally(await loops.sameNode.stop()),
    outsider: tally(await loops.outsider.stop()),
  };
  if (Object.values(results).some((r) => r.failures.length > 0)) {
    for (const file of readdirSync(join(stateDir, 'logs')).filter((f) => f.startsWith('ztunnel'))) {
      for (const l of logLines(stateDir, file)) {
        if (/connection failed|node agent: |refused|draining|classification/.test(String(l.msg))) {
          const { time, msg, uid, pod, error } = l;
          t.diagnostic(`${file}: ${JSON.stringify({ time, msg, uid, pod, dst: l['dst.addr'], error })}`);
        }
      }
    }
  }
  for (const [name, r] of Object.entries(results)) {
    t.diagnostic(`${name}: ${r.ok} ok, peer phases ${phases(r.peers).join(' → ')}`);
    assert.deepEqual(r.failures, [], `${name}: failed requests`);
    assert.ok(r.ok > 0, `${name}: requests answered`);
  }
  // Never a plaintext answer: the meshed client's requests all arrived through the ztunnels (mTLS).
  for (const name of ['crossNode', 'sameNode'] as const) {
    assert.deepEqual(phases(results[name].peers), ['127.0.0.6'], `${name}: peers the echo saw`);
  }

  // New processes, each with every ambient pod of its node enrolled, and none from a state file.
  const live = processesOf(cluster);
  for (const role of ZTUNNELS) {
    const [first, second] = replaced.get(role) ?? [];
    assert.ok(first !== undefined && second !== undefined, role);
    // The second round replaced the first round's process; the one it started serves now.
    assert.equal(second.oldPid, first.pid, role);
    assert.ok(live.includes(second.pid) && !live.includes(first.oldPid) && !live.includes(first.pid), role);
    assert.equal(existsSync(join(stateDir, `${role}-pods.json`)), false, `${role} keeps no state file`);
  }
  assert.ok(
    (await demoPods(cluster)).every((p) => p.enrolled),
    'every demo pod enrolled after the rollout',
  );
});
