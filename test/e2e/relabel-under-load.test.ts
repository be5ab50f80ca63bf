// Live relabeling under continuous load: request loops at ~50 req/s each (the meshed client to the echo on
// the other node and to the one on its own node, the outsider to an echo — all by pod IP, which works both
// in and out of the mesh) run while namespace demo is enrolled and unenrolled twice with `ferry label`.
// Zero requests may fail. The echo's view of the peer shows the traffic really switched between plaintext
// (the client's own IP) and mTLS (127.0.0.6, delivered by the destination ztunnel) during the loop.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { privilegedTest } from '../../testkit/privileged.ts';
import { DEMO, FerryCli, podOf } from '../helpers/cluster-cli.ts';
import { phases, tally } from '../helpers/request-loops.ts';

const cli = new FerryCli('relabel');
test.after(() => cli.remove());

const REQUESTS = 400; // 20 ms apart: ~50 req/s for ~8 s plus request time
const LABEL = 'istio.io/dataplane-mode';

privilegedTest('enrolling and unenrolling a namespace under load fails zero requests', async (t) => {
  const { cluster } = await cli.up(t, 'relabel', DEMO);
  const s = await cli.status(cluster);
  const client = podOf(s, 'demo', 'client-0');
  const echoes = [podOf(s, 'demo', 'echo-v1-0'), podOf(s, 'demo', 'echo-v2-0')];
  const remote = echoes.find((e) => e.node !== client.node);
  const local = echoes.find((e) => e.node === client.node);
  assert.ok(remote !== undefined && local !== undefined, 'one echo on each node (placement spreads them)');

  const loop = (pod: string, ip: string) =>
    cli.start(t, [
      'exec',
      '--cluster',
      cluster,
      pod,
      '--',
      'curl',
      '-s',
      '--count',
      String(REQUESTS),
      '--interval',
      '20',
      `http://${ip}:8080/`,
    ]);
  const loops = {
    crossNode: loop('demo/client-0', remote.ip),
    sameNode: loop('demo/client-0', local.ip),
    outsider: loop('legacy/outsider', remote.ip),
  };

  // Every loop is answering before the first change.
  await Promise.all(Object.values(loops).map((l) => l.firstOutput));
  let enrolledRounds = 0;
  for (let round = 0; round < 2; round++) {
    for (const change of [`${LABEL}=ambient`, `${LABEL}-`]) {
      const r = await cli.run(['label', '--cluster', cluster, 'namespace', 'demo', change]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /every ztunnel has the change/);
      if (change.endsWith('=ambient')) enrolledRounds++;
      // A few requests in each state (at 20 ms intervals), so every transition happens mid-stream.
      await cli.curl(cluster, 'demo/client-0', `http://${remote.ip}:8080/`);
    }
  }
  assert.equal(enrolledRounds, 2);

  const results = {
    crossNode: tally(await loops.crossNode.done),
    sameNode: tally(await loops.sameNode.done),
    outsider: tally(await loops.outsider.done),
  };
  if (Object.values(results).some((r) => r.failures.length > 0 || r.ok !== REQUESTS)) {
    // For the report: what the ztunnels saw of the failed connections, and the enrollment timeline.
    const logs = join(cli.stateRoot, cluster, 'logs');
    for (const file of readdirSync(logs).filter((f) => f.startsWith('ztunnel') || f === 'controller.log')) {
      for (const line of readFileSync(join(logs, file), 'utf8').split('\n')) {
        if (/"connection failed"|"pod (un)?enrolled"|"mesh state published"|refused/.test(line)) {
          const l = JSON.parse(line) as Record<string, unknown>;
          const { time, msg, uid, error } = l;
          t.diagnostic(`${file}: ${JSON.stringify({ time, msg, uid, src: l['src.addr'], dst: l['dst.addr'], error })}`);
        }
      }
    }
  }
  for (const [name, r] of Object.entries(results)) {
    t.diagnostic(`${name}: ${r.ok}/${REQUESTS} ok, peer phases ${phases(r.peers).join(' → ')}`);
    assert.deepEqual(r.failures, [], `${name}: failed requests`);
    assert.equal(r.ok, REQUESTS, `${name}: every request answered`);
  }
  // The meshed client's traffic really went through the mesh while enrolled, and plaintext otherwise.
  for (const name of ['crossNode', 'sameNode'] as const) {
    const seen = new Set(results[name].peers);
    assert.ok(seen.has('127.0.0.6') && seen.has(client.ip), `${name} saw both states: ${[...seen].join(', ')}`);
  }
  const after = await cli.status(cluster);
  assert.ok(
    after.pods.every((p) => !p.enrolled),
    'unenrolled at the end',
  );
});
