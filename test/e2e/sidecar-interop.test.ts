// Sidecar mode on the local cluster (issue 15 §1; docs/architecture.md "Sidecar mode"): `ferry up -f` with a
// namespace in sidecar mode (istio-injection=enabled), one ambient and one outside the mesh. Every direction
// of the interop matrix is checked as a user sees it: the reply comes from the right pod, and the server
// side's access log (the sidecar's, or the node ztunnel's) names the caller's SPIFFE identity. STRICT
// refuses plaintext, the L4 AuthorizationPolicy is enforced by the sidecar with the caller's identity, and
// a capture on the cluster bridge never sees the payload marker of a mesh↔mesh request (but does see it
// for the plaintext pair, proving the capture works). Torn down and checked clean in t.after.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { MeshStatus } from '../../src/local-cluster/controller/admin-api.ts';
import { NETNS_DIR } from '../../src/local-cluster/layout.ts';
import { type LocalSidecar, SIDECARS_FILE } from '../../src/local-cluster/sidecars.ts';
import { privilegedTest } from '../../testkit/privileged.ts';
import { FerryCli, podOf } from '../helpers/cluster-cli.ts';
import { captureBridge } from '../helpers/inpod-nodes.ts';

const MANIFESTS = fileURLToPath(new URL('./fixtures/sidecar-interop', import.meta.url));
const cli = new FerryCli('sidecar');
const SA = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

interface Echo {
  readonly pod: string;
  readonly namespace: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly peer: { readonly address: string };
}

function identityOf(s: MeshStatus, ns: string, name: string): string {
  const id = podOf(s, ns, name).identity;
  assert.ok(id !== null, `${ns}/${name} has an identity`);
  return id;
}

interface AccessLine {
  readonly direction?: string;
  readonly 'src.identity'?: string;
  readonly 'src.addr'?: string;
  readonly 'dst.workload'?: string;
  readonly 'dst.namespace'?: string;
  readonly error?: { readonly code: string };
}

privilegedTest('sidecar mode: injection, and interop with ambient, sidecars, non-mesh and waypoints', async (t) => {
  t.after(() => cli.remove());
  const { cluster } = await cli.up(t, 'sc', MANIFESTS, 2);
  const logDir = join(cli.stateRoot, cluster, 'logs');
  const scratch = mkdtempSync('/tmp/ferrytest-sidecar-');
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  const sidecars = JSON.parse(readFileSync(join(cli.stateRoot, cluster, SIDECARS_FILE), 'utf8')) as LocalSidecar[];
  const status = await cli.status(cluster);
  const ip = (ns: string, name: string) => podOf(status, ns, name).ip;

  /** Access-log lines of the server side (`file` a sidecar's log, or every node ztunnel's), polled (async logs). */
  const accessLine = async (files: () => string[], match: (l: AccessLine) => boolean): Promise<AccessLine> => {
    for (let waitMs = 20; waitMs < 60_000; waitMs *= 2) {
      for (const f of files()) {
        const found = readFileSync(join(logDir, f), 'utf8')
          .split('\n')
          .filter((l) => l.includes('"scope":"access"'))
          .map((l) => JSON.parse(l) as AccessLine)
          .find(match);
        if (found !== undefined) return found;
      }
      await delay(Math.min(waitMs, 1_000));
    }
    assert.fail('no matching access-log line');
  };
  const sidecarLog = (ns: string, pod: string) => () => [`${ns}_${pod}_istio-proxy.log`];
  const ztunnelLogs = () => readdirSync(logDir).filter((f) => /^ztunnel-node-\d+\.log$/.test(f));

  await t.test('injection: sidecar pods get istio-proxy, are never enrolled, and carry their identity', () => {
    for (const [ns, name] of [
      ['side', 'client'],
      ['side', 'echo'],
      ['side', 'strict-echo'],
      ['side', 'guarded'],
      ['amb', 'injected'], // opted in by pod label inside an ambient namespace: the sidecar wins
    ] as const) {
      const p = podOf(status, ns, name);
      assert.equal(p.sidecar, true, `${ns}/${name} has a sidecar`);
      assert.equal(p.enrolled, false, `${ns}/${name} is not enrolled in its node ztunnel`);
      const sidecar = sidecars.find((s) => s.namespace === ns && s.name === name);
      assert.ok(sidecar !== undefined, `${ns}/${name} sidecar started`);
      const cgroup = readFileSync(`/proc/${sidecar.pid}/cgroup`, 'utf8');
      assert.match(cgroup, new RegExp(`/${ns}_${name}/istio-proxy\\n`), 'the proxy runs as the istio-proxy container');
    }
    assert.equal(podOf(status, 'side', 'client').identity, SA('side', 'client'));
    const optout = podOf(status, 'side', 'optout');
    assert.equal(optout.sidecar ?? false, false, 'sidecar.istio.io/inject=false opts out');
    assert.equal(optout.meshed, false);
    assert.equal(podOf(status, 'amb', 'client').enrolled, true, 'ambient pods stay with their node ztunnel');
  });

  const capture = await captureBridge({ bridgeNetnsPath: join(NETNS_DIR, `ferry-${cluster}_bridge`) }, scratch, 'sc');
  let captureStopped = false;
  t.after(async () => {
    if (!captureStopped) await capture.stop(() => true);
  });
  // In the path of every request (and so in the echoed reply): one marker for mesh↔mesh pairs, another for
  // the plaintext control pair.
  const meshMarker = `MESH-${randomUUID()}`;
  const plainMarker = `PLAIN-${randomUUID()}`;
  const get = async (from: string, url: string, marker = meshMarker): Promise<Echo | null> => {
    const r = await cli.curl(cluster, from, `${url}/${marker}`);
    return r.echo === null ? null : (JSON.parse(r.run.stdout.split('\n')[1] ?? '{}') as Echo);
  };
  const inboundFrom = (src: string, ns: string, pod: string) => (l: AccessLine) =>
    l.direction === 'inbound' && l['src.identity'] === src && l['dst.namespace'] === ns && l['dst.workload'] === pod;

  const matrix = [
    { name: 'sidecar → ambient', from: 'side/client', url: 'http://echo.amb', to: 'amb/echo', logs: ztunnelLogs },
    {
      name: 'ambient → sidecar',
      from: 'amb/client',
      url: 'http://echo.side',
      to: 'side/echo',
      logs: sidecarLog('side', 'echo'),
    },
    {
      name: 'sidecar → sidecar',
      from: 'side/client',
      url: 'http://echo.side',
      to: 'side/echo',
      logs: sidecarLog('side', 'echo'),
    },
    {
      name: 'opted-in sidecar in an ambient namespace → sidecar',
      from: 'amb/injected',
      url: 'http://echo.side',
      to: 'side/echo',
      logs: sidecarLog('side', 'echo'),
    },
    {
      name: 'ambient → opted-in sidecar, by pod IP',
      from: 'amb/client',
      url: `http://${ip('amb', 'injected')}:8080`,
      to: 'amb/injected',
      logs: sidecarLog('amb', 'injected'),
    },
  ];
  for (const c of matrix) {
    const [fromNs = '', fromPod = ''] = c.from.split('/');
    const [toNs = '', toPod = ''] = c.to.split('/');
    const src = identityOf(status, fromNs, fromPod);
    await t.test(`${c.name}: mTLS, the server side sees ${src}`, async () => {
      const echo = await get(c.from, c.url);
      assert.ok(echo !== null, `${c.from} → ${c.url} answered 200`);
      assert.equal(`${echo.namespace}/${echo.pod}`, c.to);
      assert.equal(echo.peer.address, '127.0.0.6', 'delivered by the proxy in the server pod');
      const line = await accessLine(c.logs, inboundFrom(src, toNs, toPod));
      // Straight from the caller's pod IP: no ztunnel wraps a sidecar pod's traffic a second time.
      assert.equal(line['src.addr']?.split(':')[0], ip(fromNs, fromPod));
    });
  }

  await t.test('sidecar → service behind a waypoint: the waypoint handles it (L7), then the pod', async () => {
    const echo = await get('side/client', 'http://wp-echo.amb');
    assert.ok(echo !== null);
    assert.equal(echo.pod, 'wp-echo');
    assert.ok(echo.headers['x-request-id'] !== undefined, 'the waypoint added x-request-id');
    await accessLine(ztunnelLogs, inboundFrom(SA('amb', 'waypoint'), 'amb', 'wp-echo'));
  });

  await t.test('L4 AuthorizationPolicy at the sidecar: the allowed identity passes, another is refused', async () => {
    assert.ok((await get('side/client', 'http://guarded.side')) !== null, 'side/client is allowed');
    assert.equal(await get('amb/client', 'http://guarded.side'), null, 'amb/client is refused');
    const line = await accessLine(
      sidecarLog('side', 'guarded'),
      (l) => l.error !== undefined && l['src.identity'] === SA('amb', 'client'),
    );
    assert.equal(line.error?.code, 'FERRY_AUTHZ_NOT_ALLOWED');
  });

  await t.test(
    'no plaintext payload on the bridge for mesh↔mesh pairs; the plaintext control pair is seen',
    async () => {
      // Control: sidecar → non-mesh is plaintext by design, so its marker crosses the bridge in clear.
      const plain = await get('side/client', `http://${ip('plain', 'echo')}:8080`, plainMarker);
      assert.ok(plain !== null);
      assert.equal(plain.peer.address, ip('side', 'client'), 'a non-mesh server sees the pod itself');
      const { pcap } = await capture.stop((p) => p.includes(plainMarker));
      captureStopped = true;
      assert.ok(pcap.includes(plainMarker), 'the capture sees plaintext');
      assert.ok(!pcap.includes(meshMarker), 'no mesh↔mesh payload crossed the bridge in clear');
    },
  );

  await t.test('non-mesh → sidecar: PERMISSIVE accepts plaintext (no identity), STRICT refuses it', async () => {
    const ok = await get('plain/client', `http://${ip('side', 'echo')}:8080`, plainMarker);
    assert.ok(ok !== null, 'PERMISSIVE: plaintext reaches the app through the sidecar');
    assert.equal(ok.peer.address, '127.0.0.6');
    await accessLine(
      sidecarLog('side', 'echo'),
      (l) =>
        l.direction === 'inbound' &&
        l['src.addr']?.startsWith(`${ip('plain', 'client')}:`) === true &&
        l['src.identity'] === undefined,
    );
    assert.equal(await get('plain/client', `http://${ip('side', 'strict-echo')}:8080`, plainMarker), null, 'STRICT');
    assert.ok(
      await get('side/client', `http://${ip('side', 'strict-echo')}:8080`),
      'STRICT: mTLS from a sidecar passes',
    );
  });

  await t.test('injection is decided at creation: labelling a running namespace changes nothing', async () => {
    const label = await cli.run(['label', 'namespace', 'plain', 'istio-injection=enabled', '--cluster', cluster]);
    assert.equal(label.code, 0, label.stdout + label.stderr);
    const after = await cli.status(cluster);
    assert.equal(podOf(after, 'plain', 'echo').sidecar ?? false, false, 'no sidecar announced for a running pod');
    const echo = await get('side/client', `http://${ip('plain', 'echo')}:8080`, plainMarker);
    assert.ok(echo !== null, 'still reachable as before (plain TCP)');
    assert.equal(echo.peer.address, ip('side', 'client'));
  });

  await t.test(
    'a killed sidecar is restarted by the supervisor in its istio-proxy cgroup, and serves again',
    async () => {
      const before = sidecars.find((s) => s.namespace === 'side' && s.name === 'echo');
      assert.ok(before !== undefined);
      process.kill(before.pid, 'SIGKILL');
      let after: LocalSidecar | undefined;
      for (let waitMs = 20; waitMs < 60_000; waitMs *= 2) {
        const now = JSON.parse(readFileSync(join(cli.stateRoot, cluster, SIDECARS_FILE), 'utf8')) as LocalSidecar[];
        after = now.find((s) => s.role === before.role && s.pid !== before.pid);
        if (after !== undefined) break;
        await delay(Math.min(waitMs, 500));
      }
      assert.ok(after !== undefined, 'restarted');
      assert.match(readFileSync(`/proc/${after.pid}/cgroup`, 'utf8'), /\/side_echo\/istio-proxy\n/);
      let echo: Echo | null = null;
      for (let waitMs = 20; echo === null; waitMs *= 2) {
        echo = await get('amb/client', 'http://echo.side');
        assert.ok(echo !== null || waitMs < 60_000, 'the restarted sidecar serves');
        if (echo === null) await delay(Math.min(waitMs, 1_000));
      }
      assert.equal(echo.peer.address, '127.0.0.6', 'through the sidecar again, not around it');
    },
  );
});
