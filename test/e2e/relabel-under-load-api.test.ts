// Live relabeling under continuous load on `ferry up --api` (issue 11 on the API path): the controller
// reads pods from the Kubernetes API and announces one as HBONE only once its node agent annotated it
// `ambient.istio.io/redirection: enabled`; on unlabel the agent annotates `disabled` and unenrolls only
// after the mesh shows the pod as TCP (docs/architecture.md "Node agent"). Request loops (~50 req/s, by pod
// IP, which works in and out of the mesh: the meshed client to the echo on the other node and to the one on
// its own node, the outsider to an echo) run while namespace demo is labelled and unlabelled twice. Zero
// requests may fail, and the echo's view of the peer switches between the client's IP and 127.0.0.6.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { privilegedTest } from '../../testkit/privileged.ts';
import { type ApiPodRow, apiPods, demoClientAndEchoes, until } from '../helpers/api-cluster.ts';
import { DEMO, FerryCli } from '../helpers/cluster-cli.ts';
import { phases, startRequestLoop, tally } from '../helpers/request-loops.ts';

const cli = new FerryCli('relabel-api');
test.after(() => cli.remove());

const LABEL = 'istio.io/dataplane-mode';

const demoPods = async (cluster: string): Promise<ApiPodRow[]> =>
  (await apiPods(cli, cluster)).filter((p) => p.namespace === 'demo');

privilegedTest('ferry up --api: enrolling and unenrolling a namespace under load fails zero requests', async (t) => {
  const { cluster } = await cli.up(t, 'relabel-api', DEMO, 2, ['--api']);
  const { client, remote, local } = await demoClientAndEchoes(cli, cluster);

  const loop = (pod: string, ip: string) => startRequestLoop(t, cli, cluster, pod, `http://${ip}:8080/`);
  const loops = {
    crossNode: loop(`demo/${client.name}`, remote.ip),
    sameNode: loop(`demo/${client.name}`, local.ip),
    outsider: loop('legacy/outsider', remote.ip),
  };
  await Promise.all(Object.values(loops).map((l) => l.firstOutput));
  const startedMs = Date.now();

  const peerNow = async (): Promise<string> => {
    const r = await cli.curl(cluster, `demo/${client.name}`, `http://${remote.ip}:8080/`);
    assert.ok(r.echo !== null, r.run.stdout + r.run.stderr);
    return r.echo.peer.address;
  };
  for (let round = 0; round < 2; round++) {
    for (const change of [`${LABEL}=ambient`, `${LABEL}-`]) {
      const r = await cli.run(['label', '--cluster', cluster, 'namespace', 'demo', change]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const enrolling = change.endsWith('=ambient');
      // Each transition completes mid-stream: every pod (un)enrolled and the traffic really switched.
      await until(`demo pods ${enrolling ? 'enrolled' : 'unenrolled'}`, async () =>
        (await demoPods(cluster)).every((p) => p.enrolled === enrolling),
      );
      await until(
        `calls ${enrolling ? 'over mTLS' : 'in plaintext'}`,
        async () => (await peerNow()) === (enrolling ? '127.0.0.6' : client.ip),
      );
      t.diagnostic(`${change} complete after ${Date.now() - startedMs} ms`);
    }
  }

  // A few more requests in the final (plaintext) state, then the loops stop.
  for (let i = 0; i < 3; i++) await peerNow();
  const results = {
    crossNode: tally(await loops.crossNode.stop()),
    sameNode: tally(await loops.sameNode.stop()),
    outsider: tally(await loops.outsider.stop()),
  };
  if (Object.values(results).some((r) => r.failures.length > 0)) {
    // For the report: what the ztunnels saw of the failed connections, and the enrollment timeline.
    const logs = join(cli.stateRoot, cluster, 'logs');
    for (const file of readdirSync(logs).filter((f) => f.startsWith('ztunnel') || f.startsWith('controller'))) {
      for (const line of readFileSync(join(logs, file), 'utf8').split('\n')) {
        if (/"connection failed"|"node agent: |"mesh state published"|refused/.test(line)) {
          const l = JSON.parse(line) as Record<string, unknown>;
          const { time, msg, uid, pod, error } = l;
          const fields = { time, msg, uid, pod, src: l['src.addr'], dst: l['dst.addr'], error };
          t.diagnostic(`${file}: ${JSON.stringify(fields)}`);
        }
      }
    }
  }
  for (const [name, r] of Object.entries(results)) {
    t.diagnostic(`${name}: ${r.ok} ok, peer phases ${phases(r.peers).join(' → ')}`);
    assert.deepEqual(r.failures, [], `${name}: failed requests`);
    assert.ok(r.ok > 0, `${name}: requests answered`);
  }
  // The loops spanned every state (each transition completed while they ran): plaintext, mTLS, plaintext,
  // mTLS, plaintext, as the echo saw the meshed client's peer.
  for (const name of ['crossNode', 'sameNode'] as const) {
    const seen = phases(results[name].peers);
    assert.ok(
      seen.length >= 5 && seen.every((p) => p === client.ip || p === '127.0.0.6'),
      `${name}: ${seen.join(' → ')}`,
    );
    assert.equal(seen[0], client.ip);
    assert.equal(seen.at(-1), client.ip);
  }
});
