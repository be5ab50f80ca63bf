// `ferry migrate namespace` and `ferry migrate rollback` under load (issue 15 §3; docs/migration.md "Moving
// a namespace"): namespace "shop" (a client and an echo in two versions, all with sidecars) moves to the
// node ztunnels and back, live, while three request loops run at ~50 req/s: shop's client and an ambient
// client to the echo Service, and a client outside the mesh to an echo pod. Zero requests may fail, and
// the echo sees every mesh request arrive from 127.0.0.6 (delivered by the sidecar or the node ztunnel
// after mTLS), never from the client's own address in plaintext, and a capture on the cluster bridge
// never sees the marker the mesh clients put in every request body (it does see the outsider's marker,
// which crosses in clear by design). Torn down and checked clean in t.after.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NETNS_DIR } from '../../src/local-cluster/layout.ts';
import { MIGRATION_FILE } from '../../src/local-cluster/migration-state.ts';
import { privilegedTest } from '../../testkit/privileged.ts';
import { FerryCli, podOf, type Run } from '../helpers/cluster-cli.ts';
import { captureBridge } from '../helpers/inpod-nodes.ts';

const MANIFESTS = fileURLToPath(new URL('./fixtures/migrate-namespace', import.meta.url));
const cli = new FerryCli('migrate');
// 20 ms apart (~30–60 ms a request with its own time): outlasts one move (checked below). A rollback
// starts a sidecar per pod (BPF load, certificate, xDS: 6–20 s each on a loaded machine), hence more.
const REQUESTS = { namespace: 1200, rollback: 2400 } as const;
const INBOUND_FROM_PROXY = '127.0.0.6';

interface Loop {
  readonly firstOutput: Promise<void>;
  readonly done: Promise<Run>;
  finished(): boolean;
}

interface Tally {
  readonly ok: number;
  readonly failures: readonly string[];
  readonly peers: readonly string[];
  readonly versions: ReadonlySet<string>;
}

function tally(run: Run): Tally {
  const lines = run.stdout.split('\n');
  let ok = 0;
  const peers: string[] = [];
  const versions = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== 'HTTP 200') continue;
    ok++;
    const body = JSON.parse(lines[i + 1] ?? '{}') as { pod?: string; peer?: { address?: string } };
    peers.push(body.peer?.address ?? '?');
    versions.add(body.pod ?? '?');
  }
  const otherStatus = lines.flatMap((l, i) =>
    l.startsWith('HTTP ') && l !== 'HTTP 200' ? [`${l} ${(lines[i + 1] ?? '').slice(0, 300)}`] : [],
  );
  const failures = [...run.stderr.split('\n').filter((l) => l.startsWith('curl:')), ...otherStatus];
  if (run.code !== 0 && failures.length === 0) failures.push(`exit ${run.code}: ${run.stderr.slice(-500)}`);
  return { ok, failures, peers, versions };
}

/** `ferry migrate namespace shop`, killed (SIGKILL) once it has handed over its first pod. */
async function runKilledAfterFirstPod(t: TestContext, cluster: string): Promise<Run> {
  const first = cli.start(t, ['migrate', 'namespace', 'shop', '--cluster', cluster]);
  const handedOver = await first.untilStdout(/pod shop\/client: hand over[^\n]* done/);
  first.kill('SIGKILL');
  const run = await first.done;
  t.diagnostic(`ferry migrate namespace shop, killed after its first pod:\n${run.stdout}${run.stderr}`);
  assert.ok(handedOver, 'the first pod was handed over before the kill');
  return run;
}

privilegedTest('migrate namespace and rollback under load fail zero requests and keep mTLS', async (t) => {
  t.after(() => cli.remove());
  const scratch = mkdtempSync('/tmp/ferrytest-migrate-');
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  const { cluster } = await cli.up(t, 'mig', MANIFESTS, 2);
  const before = await cli.status(cluster);
  for (const name of ['client', 'echo-v1', 'echo-v2']) {
    const p = podOf(before, 'shop', name);
    assert.ok(p.sidecar === true && !p.enrolled, `shop/${name} starts on its sidecar`);
  }
  const vip = before.services.find((s) => s.namespace === 'shop' && s.name === 'echo')?.vip;
  assert.ok(typeof vip === 'string');
  const echoV1 = podOf(before, 'shop', 'echo-v1').ip;

  // In every request body: one marker for the mesh clients' requests, another for the outsider's.
  const meshMarker = `MESH-${randomUUID()}`;
  const plainMarker = `PLAIN-${randomUUID()}`;
  const loop = (pod: string, url: string, marker: string, requests: number): Loop => {
    let finished = false;
    const l = cli.start(t, [
      'exec',
      '--cluster',
      cluster,
      pod,
      '--',
      'curl',
      '-s',
      '--count',
      String(requests),
      '--interval',
      '20',
      '-d',
      marker,
      url,
    ]);
    void l.done.then(() => {
      finished = true;
    });
    return { ...l, finished: () => finished };
  };

  for (const [command, expect] of [
    ['namespace', 'ambient'],
    ['rollback', 'sidecar'],
  ] as const) {
    const capture = await captureBridge(
      { bridgeNetnsPath: join(NETNS_DIR, `ferry-${cluster}_bridge`) },
      scratch,
      command,
    );
    let captureStopped = false;
    t.after(async () => {
      if (!captureStopped) await capture.stop(() => true);
    });
    const loops = {
      sidecarClient: loop('shop/client', `http://${vip}:80/`, meshMarker, REQUESTS[command]),
      ambientClient: loop('amb/client', `http://${vip}:80/`, meshMarker, REQUESTS[command]),
      outsider: loop('plain/client', `http://${echoV1}:8080/`, plainMarker, REQUESTS[command]),
    };
    await Promise.all(Object.values(loops).map((l) => l.firstOutput));
    // The forward move is interrupted (the process killed) once its first pod is handed over, as a crash
    // or Ctrl-C would; run again, it resumes from the recorded phases.
    const interrupted = command === 'namespace' ? await runKilledAfterFirstPod(t, cluster) : null;
    const moved = await cli.run(['migrate', command, 'shop', '--cluster', cluster]);
    t.diagnostic(`ferry migrate ${command} shop:\n${moved.stdout}${moved.stderr}`);
    assert.equal(moved.code, 0, moved.stdout + moved.stderr);
    if (interrupted !== null) {
      assert.doesNotMatch(moved.stdout, /pod shop\/client/, 'the resumed run continues after the first pod');
    }
    const underLoad = Object.values(loops).every((l) => !l.finished());
    // Resumable and idempotent: a second run finds nothing to do.
    const again = await cli.run(['migrate', command, 'shop', '--cluster', cluster]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /nothing to do/);

    const after = await cli.status(cluster);
    for (const name of ['client', 'echo-v1', 'echo-v2']) {
      const p = podOf(after, 'shop', name);
      if (expect === 'ambient') assert.ok(p.enrolled && p.meshed && p.sidecar !== true, `shop/${name} ambient`);
      else assert.ok(p.sidecar === true && !p.enrolled, `shop/${name} back on its sidecar`);
    }
    const results: Record<'sidecarClient' | 'ambientClient' | 'outsider', Tally> = {
      sidecarClient: tally(await loops.sidecarClient.done),
      ambientClient: tally(await loops.ambientClient.done),
      outsider: tally(await loops.outsider.done),
    };
    const { pcap } = await capture.stop((p) => p.includes(plainMarker));
    captureStopped = true;
    for (const [name, r] of Object.entries(results)) {
      t.diagnostic(`${command} ${name}: ${r.ok}/${REQUESTS[command]} ok, versions ${[...r.versions].join(',')}`);
      // Rollback included: the moving client's connects reach the proxy that captured them while its
      // sidecar and its node ztunnel both serve it (docs/redirect.md, "Two redirectors on one pod").
      await t.test(`${command}: ${name} fails zero requests`, () => {
        assert.deepEqual(r.failures, [], `${command} ${name}: failed requests`);
        assert.equal(r.ok, REQUESTS[command], `${command} ${name}: every request answered`);
      });
    }
    await t.test(`${command}: no mesh request body crossed the bridge in clear`, () => {
      assert.ok(pcap.includes(plainMarker), "the capture sees the outsider's plaintext");
      assert.ok(!pcap.includes(meshMarker), 'no mesh client marker on the bridge');
    });
    assert.ok(underLoad, 'the move ran entirely under load (raise REQUESTS if not)');
    for (const name of ['sidecarClient', 'ambientClient'] as const) {
      const plaintext = results[name].peers.filter((p) => p !== INBOUND_FROM_PROXY);
      assert.deepEqual([...new Set(plaintext)], [], `${command} ${name}: every request arrived over mTLS`);
      assert.deepEqual([...results[name].versions].sort(), ['echo-v1', 'echo-v2'], 'both versions answered');
    }
  }
  const phases = JSON.parse(readFileSync(join(cli.stateRoot, cluster, MIGRATION_FILE), 'utf8')) as {
    pods: Record<string, string>;
  };
  assert.deepEqual(phases.pods, { 'shop/client': 'sidecar', 'shop/echo-v1': 'sidecar', 'shop/echo-v2': 'sidecar' });
});
