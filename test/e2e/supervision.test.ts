// Supervision and failover in the local cluster (issue 9 §3), with real processes:
// - kill -9 of a ztunnel, and of a waypoint: the supervisor started by `ferry up` runs a new one within 2 s
//   (then it becomes ready and serves); `ferry status` counts the restart;
// - a pod unenrolled behind the controller's back (DELETE /pods/<uid> on its ztunnel) is enrolled again
//   within 5 s;
// - one of a Service's two endpoints on a node whose ztunnel is down (supervisor stopped, so it stays
//   down): of 100 new connections, only the first few fail, directly (the client's ztunnel) and through a
//   waypoint (its own load balancing); before outlier detection about half of them failed;
// - `ferry status` then shows the dead ztunnel and the supervisor as not running, and `ferry up` starts the
//   supervisor again, which restarts the ztunnel (restart counts kept).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { LiveMeshStatus } from '../../src/local-cluster/live-status.ts';
import { cgroup2MountPoint } from '../../src/redirect-bpf/probe.ts';
import { privilegedTest } from '../../testkit/privileged.ts';
import { FerryCli, killSupervisor, vipOf } from '../helpers/cluster-cli.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/supervision', import.meta.url));
const cli = new FerryCli('sup');
test.after(() => cli.remove());

/** Live pids in the cluster's `system/<role>` cgroup. */
function pidsOf(cluster: string, role: string): number[] {
  const root = cgroup2MountPoint();
  assert.ok(root !== null, 'cgroup2 is mounted');
  try {
    return readFileSync(join(root, 'ferry.slice', cluster, 'system', role, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Polls `check` every 20 ms until it returns a value; fails after `limitMs`. Resolves with value and ms. */
async function within<T>(what: string, limitMs: number, check: () => T | undefined | Promise<T | undefined>) {
  const start = Date.now();
  for (;;) {
    const v = await check();
    if (v !== undefined) return { value: v, ms: Date.now() - start };
    if (Date.now() - start > limitMs) assert.fail(`${what}: not within ${limitMs} ms`);
    await delay(20);
  }
}

async function ready(url: string): Promise<true | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    await res.text();
    return res.ok ? true : undefined;
  } catch {
    return undefined;
  }
}

/** An admin request to a ztunnel: changes go to its admin socket when it has one, else to its TCP port. */
function ztunnelAdmin(stateDir: string, node: { name: string; admin: string }, method: string, path: string) {
  const socket = join(stateDir, `ztunnel-${node.name}-admin.sock`);
  const [host, port] = node.admin.split(':');
  const target = existsSync(socket) ? { socketPath: socket } : { host, port: Number(port) };
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ ...target, method, path }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** 100 new connections, one every 50 ms, from `<ns>/client` to `url`: the indexes of the failed ones. */
async function newConnections(cluster: string, ns: string, url: string): Promise<{ total: number; failed: number[] }> {
  const r = await cli.run([
    'exec',
    '--cluster',
    cluster,
    `${ns}/client`,
    '--',
    'curl',
    '-s',
    url,
    '--count',
    '100',
    '--interval',
    '50',
    '--json',
    '-m',
    '2',
  ]);
  const lines = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { status?: number });
  const failed = lines.flatMap((l, i) => (l.status === 200 ? [] : [i]));
  return { total: lines.length, failed };
}

async function liveStatus(cluster: string): Promise<LiveMeshStatus> {
  return (await cli.status(cluster)) as unknown as LiveMeshStatus;
}

privilegedTest('supervision: restarts within 2 s, enrollment re-checked, outlier ejection', async (t) => {
  const { cluster } = await cli.up(t, 'sup', FIXTURE);
  const stateDir = join(cli.stateRoot, cluster);
  const mesh = JSON.parse(readFileSync(join(stateDir, 'mesh.json'), 'utf8')) as {
    nodes: { name: string; admin: string; readiness: string }[];
  };
  const node1 = mesh.nodes[1];
  assert.ok(node1 !== undefined);
  const first = await liveStatus(cluster);
  assert.equal(first.supervisor.running, true, 'ferry up started the supervisor');
  const supVip = vipOf(first, 'sup', 'echo');
  const l7Vip = vipOf(first, 'l7', 'echo');

  await t.test('a killed ztunnel runs again within 2 s, becomes ready, and status counts it', async () => {
    const [old] = pidsOf(cluster, 'ztunnel-node-1');
    assert.ok(old !== undefined, 'ztunnel-node-1 runs');
    process.kill(old, 'SIGKILL');
    const { value: pid, ms } = await within('a new ztunnel-node-1', 2_000, () =>
      pidsOf(cluster, 'ztunnel-node-1').find((p) => p !== old),
    );
    const up = await within('ztunnel-node-1 ready', 30_000, () => ready(`http://${node1.readiness}/healthz/ready`));
    t.diagnostic(`ztunnel-node-1 running again after ${ms} ms (pid ${pid}), ready ${up.ms} ms later`);
    const s = await liveStatus(cluster);
    const z = s.processes.find((p) => p.role === 'ztunnel-node-1');
    assert.equal(z?.running, true);
    assert.equal(z?.restarts, 1);
    assert.equal(z?.pid, pid);
    // Its pods are enrolled again (its state file, or the controller's re-check) and serve.
    await within('sup/echo-b enrolled on node-1', 10_000, async () => {
      const p = (await liveStatus(cluster)).pods.find((x) => x.namespace === 'sup' && x.name === 'echo-b');
      return p?.enrolledFrom === 'ztunnel' && p.enrolled ? true : undefined;
    });
    const r = await cli.curl(cluster, 'sup/client', `http://${supVip}/`);
    assert.ok(r.echo !== null, r.run.stdout + r.run.stderr);
  });

  await t.test('a killed waypoint runs again within 2 s and serves', async () => {
    const [old] = pidsOf(cluster, 'waypoint-l7-waypoint');
    assert.ok(old !== undefined, 'the waypoint runs');
    process.kill(old, 'SIGKILL');
    const { value: pid, ms } = await within('a new waypoint', 2_000, () =>
      pidsOf(cluster, 'waypoint-l7-waypoint').find((p) => p !== old),
    );
    const waypoints = JSON.parse(readFileSync(join(stateDir, 'waypoints.json'), 'utf8')) as {
      role: string;
      readiness: string;
    }[];
    const w = waypoints.find((x) => x.role === 'waypoint-l7-waypoint');
    assert.ok(w !== undefined);
    const up = await within('waypoint ready', 30_000, () => ready(`http://${w.readiness}/healthz/ready`));
    t.diagnostic(`waypoint running again after ${ms} ms (pid ${pid}), ready ${up.ms} ms later`);
    await within('traffic through the restarted waypoint', 15_000, async () => {
      const r = await cli.curl(cluster, 'l7/client', `http://${l7Vip}/`);
      return r.echo !== null ? true : undefined;
    });
    const s = await liveStatus(cluster);
    assert.equal(s.processes.find((p) => p.role === 'waypoint-l7-waypoint')?.restarts, 1);
  });

  await t.test('a pod unenrolled behind the controller is enrolled again within 5 s', async () => {
    const node0 = mesh.nodes[0];
    assert.ok(node0 !== undefined);
    const uid = 'Kubernetes//Pod/sup/echo-a';
    const del = await ztunnelAdmin(stateDir, node0, 'DELETE', `/pods/${encodeURIComponent(uid)}`);
    assert.equal(del.status, 200, del.body);
    const { ms } = await within('sup/echo-a enrolled again', 5_000, async () => {
      const list = await ztunnelAdmin(stateDir, node0, 'GET', '/pods');
      return list.body.includes(JSON.stringify(uid)) ? true : undefined;
    });
    t.diagnostic(`re-enrolled ${ms} ms after DELETE /pods`);
  });

  await t.test(
    'one endpoint on a dead node: only the first new connections fail; ferry up brings it back',
    async () => {
      await killSupervisor(cluster); // so that ztunnel-node-1 stays down
      const [old] = pidsOf(cluster, 'ztunnel-node-1');
      assert.ok(old !== undefined);
      process.kill(old, 'SIGKILL');
      await within('ztunnel-node-1 gone', 5_000, () =>
        pidsOf(cluster, 'ztunnel-node-1').length === 0 ? true : undefined,
      );

      const s = await liveStatus(cluster);
      assert.equal(s.supervisor.running, false);
      assert.equal(s.processes.find((p) => p.role === 'ztunnel-node-1')?.running, false);
      assert.equal(s.ztunnels.find((z) => z.node === 'node-1')?.answered, false);
      assert.equal(s.pods.find((p) => p.name === 'echo-b' && p.namespace === 'sup')?.enrolledFrom, 'controller');

      for (const [ns, vip] of [
        ['sup', supVip],
        ['l7', l7Vip],
      ] as const) {
        const { total, failed } = await newConnections(cluster, ns, `http://${vip}/`);
        t.diagnostic(
          `${ns} (${ns === 'l7' ? 'through the waypoint' : 'direct'}): ${failed.length} of ${total} new connections failed: ${failed.join(' ')}`,
        );
        assert.equal(total, 100);
        // 3 consecutive failures eject the dead endpoint; with 50/50 choices they come early.
        assert.ok(failed.length <= 5, `${failed.length} failed`);
        assert.ok(
          failed.every((i) => i < 30),
          `failures after the first attempts: ${failed.join(' ')}`,
        );
      }

      const up = await cli.run(['up', '-f', FIXTURE, '--cluster', cluster]);
      assert.equal(up.code, 0, up.stdout + up.stderr);
      assert.match(up.stdout, /the supervisor was not running: started it/);
      await within('ztunnel-node-1 running again', 10_000, () =>
        pidsOf(cluster, 'ztunnel-node-1').length > 0 ? true : undefined,
      );
      await within('ztunnel-node-1 ready', 30_000, () => ready(`http://${node1.readiness}/healthz/ready`));
      const after = await liveStatus(cluster);
      assert.equal(after.supervisor.running, true);
      assert.equal(
        after.processes.find((p) => p.role === 'ztunnel-node-1')?.restarts,
        2,
        'counts kept across supervisors',
      );
    },
  );
});
