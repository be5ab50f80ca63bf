// Hitless ztunnel replacement (issue 9 §3): `ferry rollout restart ztunnel` while a client opens a new
// connection every 10 ms to a Service with an endpoint on each node: no new connection fails, through two
// rounds (the second replaces processes that were themselves replacements); afterwards every node's ztunnel
// is a new process with all its pods enrolled, reachable on its admin socket at the usual path (the
// controller enrolls through it), and `ferry status` shows the new addresses.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { LiveMeshStatus } from '../../src/local-cluster/live-status.ts';
import { privilegedTest } from '../../testkit/privileged.ts';
import { FerryCli, processesOf, vipOf } from '../helpers/cluster-cli.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/supervision', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const cli = new FerryCli('rollout');
test.after(() => cli.remove());

function socketGet(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method: 'GET', path }, (res) => {
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

privilegedTest('ferry rollout restart ztunnel: no failed new connection, twice', async (t) => {
  const { cluster } = await cli.up(t, 'roll', FIXTURE);
  const stateDir = join(cli.stateRoot, cluster);
  const before = (await cli.status(cluster)) as unknown as LiveMeshStatus;
  const vip = vipOf(before, 'sup', 'echo');
  const pidsBefore = new Map(before.processes.map((p) => [p.role, p.pid]));

  // A new connection every 10 ms for the whole rollout (each request on a fresh connection).
  const loader = spawn(
    process.execPath,
    [
      MAIN,
      'exec',
      '--cluster',
      cluster,
      'sup/client',
      '--',
      'curl',
      '-s',
      `http://${vip}/`,
      '--count',
      '1000000',
      '--interval',
      '10',
      '--json',
      '-m',
      '5',
    ],
    { env: { ...process.env, FERRY_STATE_DIR: cli.stateRoot }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.after(() => {
    if (loader.exitCode === null) loader.kill('SIGKILL');
  });
  let out = '';
  loader.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const closed = new Promise<void>((resolve) => loader.on('close', () => resolve()));
  await delay(2_000);

  for (const round of [1, 2]) {
    const r = await cli.run(['rollout', 'restart', 'ztunnel', '--cluster', cluster]);
    t.diagnostic(`round ${round}:\n${r.stdout.trim()}`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /ztunnel-node-0: replaced/);
    assert.match(r.stdout, /ztunnel-node-1: replaced/);
  }
  await delay(1_000);
  // `ferry exec` does not forward signals: end the curl inside the pod, and with it the exec.
  for (const pid of processesOf(cluster)) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('--interval')) process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  await closed;
  const lines = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { status?: number; error?: { code?: string } });
  const failed = lines.flatMap((l, i) => (l.status === 200 ? [] : [`#${i} ${l.error?.code ?? l.status}`]));
  t.diagnostic(`${lines.length} new connections during two rollouts, ${failed.length} failed ${failed.join(' ')}`);
  assert.ok(lines.length >= 200, `only ${lines.length} connections`);
  assert.deepEqual(failed, []);

  const after = (await cli.status(cluster)) as unknown as LiveMeshStatus;
  for (const role of ['ztunnel-node-0', 'ztunnel-node-1']) {
    const p = after.processes.find((x) => x.role === role);
    assert.equal(p?.running, true, role);
    assert.notEqual(p?.pid, pidsBefore.get(role), `${role} is a new process`);
  }
  assert.ok(
    after.pods.filter((p) => p.meshed).every((p) => p.enrolledFrom === 'ztunnel' && p.enrolled),
    JSON.stringify(after.pods),
  );
  // The new process answers on the usual admin socket (where the controller enrolls pods).
  const mesh = JSON.parse(readFileSync(join(stateDir, 'mesh.json'), 'utf8')) as { nodes: { name: string }[] };
  for (const n of mesh.nodes) {
    const r = await socketGet(join(stateDir, `ztunnel-${n.name}-admin.sock`), '/pods');
    assert.equal(r.status, 200, r.body);
  }
});
