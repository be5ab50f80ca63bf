// Node agent restarts and DaemonSet-style handovers on a real kernel (issue 14 §2, "Node agent restart and
// DaemonSet rollout"). A client in an enrolled pod connects to another enrolled pod every 20 ms throughout;
// the peer app reports the source it saw (127.0.0.6: through the ztunnels, mTLS; the client's IP: plaintext).
// - kill -9 and SIGTERM, then a new process: during the gap the pods stay captured and their connects are
//   refused (fail closed, never plaintext); after it, every pod is enrolled again from the pinned maps and
//   the API (no state file), and a pod the API deleted during the gap is unpinned and refused (EPERM).
// - maxSurge=1/maxUnavailable=0 on one node: a ztunnel in a new pod (kubelet-shaped cgroup under the guarded
//   pod root, private cgroup namespace, --pod-uid) starts beside the old one, then the old one is stopped
//   and its pod deleted: no connect fails. The same ztunnel without --pod-uid is refused its own way to the
//   API by the guard the previous agent left armed (the negative control: the exemption is what helps);
//   and its own pod is never captured by its own agent, even in an ambient namespace.
// The ztunnels keep the host netns (cgroup BPF acts by cgroup, not netns); the API server listens on the
// host's first non-loopback address, because the guard never refuses loopback destinations.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { before, type TestContext } from 'node:test';
import { uninstallPins } from '../../src/redirect-bpf/loader.ts';
import { leftoversOfThisProcess, sweepTestLeftovers } from '../../testkit/netns.ts';
import { privilegedTest, privilegeProblem } from '../../testkit/privileged.ts';
import { Topology } from '../../testkit/topology.ts';
import {
  type NodeZtunnel,
  type NodeZtunnelOptions,
  serveGreetingApp,
  startNodeZtunnel,
  tempDir,
  writeCaDir,
} from '../helpers/inpod-nodes.ts';
import {
  AMBIENT,
  type Attempt,
  attempts,
  type KubePod,
  kubePod,
  LOOP_CLIENT,
  meshYaml,
  NODE,
  workloadUid,
} from '../helpers/kubelet-pods.ts';
import { startLocalApi } from '../helpers/local-api.ts';
import { connectFromPod } from '../helpers/stand-in.ts';

before(async () => {
  if (privilegeProblem() === null) await sweepTestLeftovers();
});

type LogLine = Record<string, unknown>;
const enrolledLine = (name: string) => (l: LogLine) => l.msg === 'node agent: pod enrolled' && l.pod === name;

/** The host's first non-loopback IPv4 address (the API must be reached through the guarded connect path). */
function hostAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    const found = list?.find((a) => a.family === 'IPv4' && !a.internal);
    if (found !== undefined) return found.address;
  }
  throw new Error('this test needs a non-loopback IPv4 address on the host');
}

function remoteOfReply(res: Awaited<ReturnType<typeof connectFromPod>>): string {
  assert.ok(res.ok, `connection failed: ${JSON.stringify(res)}`);
  return String((res.reply as { remote?: unknown }).remote);
}

async function enrolledUids(zt: NodeZtunnel): Promise<string[]> {
  const res = await zt.admin('GET', '/pods');
  return ((res.json as { pods: { uid: string }[] }).pods ?? []).map((p) => p.uid).sort();
}

/** A looping client from web's app container to db's app; stop() ends it. */
function startLoop(web: KubePod, db: KubePod, stack: AsyncDisposableStack) {
  const child = web.pod.spawn(process.execPath, ['-e', LOOP_CLIENT, db.pod.ip, '8080'], { container: web.app });
  child.on('error', () => undefined);
  const stop = (): void => {
    child.kill('SIGKILL');
  };
  stack.defer(stop);
  return { loop: attempts(child), stop };
}

/** Waits for `n` answered attempts after index `from`. */
function answeredAfter(seen: readonly Attempt[], from: number, n: number): (a: Attempt) => boolean {
  return () => seen.slice(from).filter((a) => a.ok).length >= n;
}

privilegedTest(
  'node agent restart and handover: captured throughout, rebuilt from pins + API, own pod exempt',
  async (t: TestContext) => {
    const stack = new AsyncDisposableStack();
    t.after(() => stack.disposeAsync());
    const api = await startLocalApi(t, { host: hostAddress() });
    const topo = stack.use(await Topology.create('handover'));
    await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo', labels: AMBIENT } });
    await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ferry-system' } });
    const web = await kubePod(api, topo, stack, 'web', 'systemd-burstable');
    const db = await kubePod(api, topo, stack, 'db', 'cgroupfs-guaranteed');
    const gone = await kubePod(api, topo, stack, 'gone', 'systemd-besteffort');
    const outside = await topo.addPod('outside', { node: 'node-b' }); // not in the mesh, not on this node
    for (const p of [db.pod, outside]) await serveGreetingApp(p, 8080, 'handover', stack);

    const dir = await tempDir(stack, 'handover');
    const caDir = join(dir, 'ca');
    await mkdir(caDir);
    await writeCaDir(caDir);
    const configPath = join(dir, 'mesh.yaml');
    await writeFile(configPath, meshYaml([web.pod, db.pod, gone.pod]));
    const pinRoot = `${topo.pinRoot}-${NODE}`;
    stack.defer(() => uninstallPins(pinRoot)); // after every ztunnel is gone (LIFO)
    let generation = 0;
    /** Each process its own admin socket (two run side by side in a handover); no state file is kept. */
    const options = (placement?: NodeZtunnelOptions['placement'], config = configPath): NodeZtunnelOptions => ({
      node: NODE,
      configPath: config,
      cgroupRoot: topo.nodeCgroup(NODE),
      pinRoot,
      statePath: join(dir, `zt-${generation++}`),
      caDir,
      kubeconfigPath: api.kubeconfigPath,
      ...(placement === undefined ? {} : { placement }),
    });
    let zt = await startNodeZtunnel(options(), stack);
    for (const name of ['web', 'db', 'gone']) await zt.logs.waitFor(enrolledLine(name));

    for (const how of ['kill -9', 'SIGTERM'] as const) {
      await t.test(`${how}, then a new process: refused during the gap, never plaintext; rebuilt after`, async () => {
        const { loop, stop } = startLoop(web, db, stack);
        await loop.waitFor((a) => a.ok);
        const down = loop.seen.length;
        if (how === 'kill -9') await zt.kill();
        else await zt.stop();
        const gapStart = loop.seen.length;
        await loop.waitFor(() => loop.seen.slice(gapStart).filter((a) => a.code === 'ECONNREFUSED').length >= 3);
        // Nor does a connect to a peer outside the mesh leave the pod in plaintext: refused at once.
        assert.deepEqual(await connectFromPod(web.pod, outside.ip, 8080), { ok: false, code: 'ECONNREFUSED' });
        if (how === 'kill -9') await api.remove('v1', 'Pod', 'demo', 'gone'); // deleted while no agent runs
        zt = await startNodeZtunnel(options(), stack);
        const restarted = loop.seen.length;
        await loop.waitFor(answeredAfter(loop.seen, restarted, 5));
        stop();
        const during = loop.seen.slice(down);
        const failed = during.filter((a) => !a.ok).map((a) => a.code);
        t.diagnostic(
          `${how}: ${during.length} attempts from the stop to 5 answers after the restart, refused: ${failed.length} (${[...new Set(failed)].join(', ')})`,
        );
        assert.deepEqual(
          during.filter((a) => a.ok && a.remote !== '127.0.0.6'),
          [],
          'every answer came through the ztunnels',
        );
        // Refused at once while no process serves the pods: the pinned datapath fails closed.
        const unexpected = during.slice(gapStart - down).filter((a) => !a.ok && a.code !== 'ECONNREFUSED');
        assert.deepEqual(unexpected, [], 'connects in the gap are refused, nothing else');
        assert.deepEqual(await enrolledUids(zt), [workloadUid('demo', 'db'), workloadUid('demo', 'web')]);
        if (how === 'kill -9') {
          const unpinned = await zt.logs.waitFor((l) => l.msg === 'unpinned pods no longer enrolled');
          assert.equal((unpinned.unpinned as string[]).length, 1);
          // Its leftover processes are neither captured nor let out: a cgroup of no pod is refused.
          assert.deepEqual(await connectFromPod(gone.pod, outside.ip, 8080), { ok: false, code: 'EPERM' });
        }
      });
    }

    /** A ztunnel pod of the DaemonSet: in ferry-system, its container's cgroup under the guarded root. */
    const ztunnelPod = async (name: string, namespace = 'ferry-system') => {
      const p = await kubePod(api, topo, stack, name, 'systemd-burstable', { namespace });
      const cgroupPath = join(p.pod.cgroupPath, p.app);
      mkdirSync(cgroupPath, { recursive: true }); // removed with the pod's cgroup tree
      return { ...p, cgroupPath };
    };

    await t.test('maxSurge handover between ztunnel pods under the guarded root: no connect fails', async () => {
      await zt.stop(); // the previous test's process (not in a pod cgroup); its pins and armed guard stay
      const podA = await ztunnelPod('ztunnel-a');
      const a = await startNodeZtunnel(options({ cgroupPath: podA.cgroupPath, podUid: podA.uid }), stack);
      await a.logs.waitFor(enrolledLine('web'));
      await a.logs.waitFor(enrolledLine('db'));
      const { loop, stop } = startLoop(web, db, stack);
      // The ztunnel's own dial to db's app (from its pod cgroup) passes the guard.
      await loop.waitFor(answeredAfter(loop.seen, 0, 5));
      const handover = loop.seen.length;
      const podB = await ztunnelPod('ztunnel-b');
      const b = await startNodeZtunnel(options({ cgroupPath: podB.cgroupPath, podUid: podB.uid }), stack);
      await b.logs.waitFor(enrolledLine('web'));
      await b.logs.waitFor(enrolledLine('db'));
      await b.logs.waitFor((l) => l.msg === 'unpinned pods no longer enrolled' || l.msg === 'node agent synced');
      await loop.waitFor(answeredAfter(loop.seen, handover, 5));
      // The old pod terminates (drains), then the kubelet deletes it: the new agent drops its classification.
      await a.stop();
      const mark = b.logs.lines.length;
      await api.remove('v1', 'Pod', 'ferry-system', 'ztunnel-a');
      await b.logs.waitFor(
        (l) => b.logs.lines.indexOf(l) >= mark && l.msg === 'node agent: classification removed (pod gone)',
      );
      const oldGone = loop.seen.length;
      await loop.waitFor(answeredAfter(loop.seen, oldGone, 10));
      stop();
      const during = loop.seen.slice(handover);
      t.diagnostic(`handover: ${during.length} attempts, ${during.filter((x) => !x.ok).length} failed`);
      assert.deepEqual(
        during.filter((x) => !x.ok || x.remote !== '127.0.0.6'),
        [],
        'every connect answered through the ztunnels',
      );
      assert.deepEqual(await enrolledUids(b), [workloadUid('demo', 'db'), workloadUid('demo', 'web')]);
      // Served by the new process: its pods' connections are counted there.
      await b.logs.waitFor(
        (l) => l.msg === 'connection complete' && l.direction === 'inbound' && l['dst.addr'] === `${db.pod.ip}:8080`,
      );
      zt = b;
    });

    await t.test('a pod the old ztunnel enrolled after the new one is taken back when the old one exits', async () => {
      // The old process gets its own config file, so the test decides which of the two enrolls last.
      const oldConfig = join(dir, 'mesh-old.yaml');
      await writeFile(oldConfig, meshYaml([web.pod, db.pod]));
      const old = await startNodeZtunnel(options(undefined, oldConfig), stack);
      await old.logs.waitFor(enrolledLine('web'));
      const late = await kubePod(api, topo, stack, 'late', 'systemd-burstable');
      await writeFile(configPath, meshYaml([web.pod, db.pod, late.pod]));
      zt.reload();
      await zt.logs.waitFor(enrolledLine('late'));
      await writeFile(oldConfig, meshYaml([web.pod, db.pod, late.pod]));
      old.reload();
      await old.logs.waitFor(enrolledLine('late')); // its listeners replaced the new process's for `late`
      const { loop, stop } = startLoop(late, db, stack);
      await loop.waitFor((a) => a.ok);
      const mark = zt.logs.lines.length;
      await old.stop();
      const exited = loop.seen.length;
      const taken = await zt.logs.waitFor(
        (l) =>
          zt.logs.lines.indexOf(l) >= mark &&
          l.msg === 'pod listeners registered again (their entries vanished)' &&
          l.uid === workloadUid('demo', 'late'),
      );
      assert.deepEqual([...(taken.maps as string[])].sort(), [
        'hbone_listeners',
        'inbound_listeners',
        'outbound_listeners',
      ]);
      await loop.waitFor(answeredAfter(loop.seen, exited, 5));
      stop();
      const all = loop.seen;
      const refused = all.filter((a) => !a.ok);
      t.diagnostic(
        `late: ${all.length} attempts, ${refused.length} refused between the old process's exit and the take-back`,
      );
      assert.deepEqual(
        all.filter((a) => a.ok && a.remote !== '127.0.0.6'),
        [],
        'never plaintext',
      );
      assert.deepEqual(
        refused.filter((a) => a.code !== 'ECONNREFUSED'),
        [],
        'at worst refused at once (fail closed)',
      );
    });

    await t.test('without --pod-uid, a new ztunnel pod is refused its way to the API by the armed guard', async () => {
      await zt.stop();
      const podC = await ztunnelPod('ztunnel-c');
      const c = await startNodeZtunnel(options({ cgroupPath: podC.cgroupPath }), stack);
      const failed = await c.logs.waitFor((l) => l.msg === 'list/watch failed; retrying');
      assert.match(String(failed.error), /EPERM/);
      await c.kill();
      // The same pod with --pod-uid: exempt before its first connect, so the agent lists and enrolls.
      const again = await startNodeZtunnel(options({ cgroupPath: podC.cgroupPath, podUid: podC.uid }), stack);
      await again.logs.waitFor((l) => l.msg === 'node agent synced');
      await again.logs.waitFor(enrolledLine('web'));
      assert.equal(
        again.logs.lines.some((l) => l.msg === 'list/watch failed; retrying'),
        false,
        'no API call of the exempted ztunnel was refused',
      );
      await again.stop();
    });

    await t.test('its own pod in an ambient namespace is never captured by its own agent', async () => {
      // Not the chart's setup (its pods are labelled `none`): the own-pod rule holds without that label.
      const podD = await ztunnelPod('ztunnel-d', 'demo');
      const late = topo.pod('late');
      // The controller would publish it as a workload of the mesh: only the rule keeps it out.
      await writeFile(configPath, meshYaml([web.pod, db.pod, late, podD.pod]));
      const d = await startNodeZtunnel(options({ cgroupPath: podD.cgroupPath, podUid: podD.uid }), stack);
      await d.logs.waitFor(enrolledLine('web'));
      await d.logs.waitFor(enrolledLine('db'));
      await d.logs.waitFor(enrolledLine('late'));
      assert.equal(d.logs.lines.some(enrolledLine('ztunnel-d')), false);
      assert.deepEqual(await enrolledUids(d), [
        workloadUid('demo', 'db'),
        workloadUid('demo', 'late'),
        workloadUid('demo', 'web'),
      ]);
      // Its own dials (db's app, from its pod cgroup) still pass the guard: the pod is classified exempt.
      assert.equal(remoteOfReply(await connectFromPod(web.pod, db.pod.ip, 8080, { container: web.app })), '127.0.0.6');
      await d.stop();
    });
  },
  { timeout: 360_000 },
);

privilegedTest('leaves no netns, cgroup or pin behind', async () => {
  assert.deepEqual(leftoversOfThisProcess(), []);
});
