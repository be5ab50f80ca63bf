// Fail-closed capture for new pods (issue 14 §2 "No plaintext window for a new pod"; docs/redirect.md): a
// ztunnel with --enroll-from=kubernetes arms the guard on its pod root, so a pod's cgroup that appears under
// it is refused (EPERM) until the node agent has classified it: enrolled and captured for an ambient pod,
// exempt (direct) for any other. Each new pod runs a client that connects in a loop from its first instant
// to an enrolled peer; the peer's inbound access log tells HBONE (mTLS, a source identity) from plaintext
// (steered in by the peer's side only), and an ambient pod's plaintext count must stay 0. Real cgroups in the kubelet's layout, netns, BPF and the local Kubernetes API server.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, type TestContext } from 'node:test';
import { uninstallPins } from '../../src/redirect-bpf/loader.ts';
import { leftoversOfThisProcess, sweepTestLeftovers } from '../../testkit/netns.ts';
import { privilegedTest, privilegeProblem } from '../../testkit/privileged.ts';
import { type Pod, Topology } from '../../testkit/topology.ts';
import { type NodeZtunnel, serveGreetingApp, startNodeZtunnel, tempDir, writeCaDir } from '../helpers/inpod-nodes.ts';
import { attempts, containerId, LOOP_CLIENT, meshYaml, NODE } from '../helpers/kubelet-pods.ts';
import { type LocalApi, startLocalApi } from '../helpers/local-api.ts';

before(async () => {
  if (privilegeProblem() === null) await sweepTestLeftovers();
});

/**
 * A Pod in the API, then its kubelet-shaped cgroup and netns, then at once a looping client in its app
 * container (the API knows the pod before its cgroup exists, as when the scheduler binds it).
 */
async function startPodWithLoop(
  api: LocalApi,
  topo: Topology,
  stack: AsyncDisposableStack,
  name: string,
  namespace: string,
  qos: 'burstable' | 'besteffort',
  target: { ip: string; port: number },
): Promise<{ pod: Pod; loop: ReturnType<typeof attempts>; stop(): void }> {
  const created = await api.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: { nodeName: NODE, containers: [{ name: 'app', image: 'greeter' }] },
  });
  const uid = String((created.metadata as { uid: string }).uid);
  const app = containerId();
  const cgroup = `kubepods.slice/kubepods-${qos}.slice/kubepods-${qos}-pod${uid.replaceAll('-', '_')}.slice`;
  const pod = await topo.addPod(name, { node: NODE, cgroup });
  const child = pod.spawn(process.execPath, ['-e', LOOP_CLIENT, target.ip, String(target.port)], {
    container: `cri-containerd-${app}.scope`,
  });
  child.on('error', () => undefined);
  const stop = (): void => {
    child.kill('SIGKILL');
  };
  stack.defer(stop);
  await api.writeStatus({
    ...created,
    status: {
      phase: 'Running',
      podIP: pod.ip,
      qosClass: qos === 'burstable' ? 'Burstable' : 'BestEffort',
      containerStatuses: [{ name: 'app', containerID: `containerd://${app}` }],
    },
  });
  return { pod, loop: attempts(child), stop };
}

privilegedTest(
  'fail-closed: a new pod is refused until the node agent classified it, never plaintext',
  async (t: TestContext) => {
    const stack = new AsyncDisposableStack();
    t.after(() => stack.disposeAsync());
    const api = await startLocalApi(t);
    const topo = stack.use(await Topology.create('failclosed'));
    await api.create({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'demo', labels: { 'istio.io/dataplane-mode': 'ambient' } },
    });
    await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'plain' } });

    // The peer: an enrolled ambient pod that counts connections not delivered by a ztunnel.
    const serverApi = await api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'server', namespace: 'demo' },
      spec: { nodeName: NODE, containers: [{ name: 'app', image: 'greeter' }] },
    });
    const serverUid = String((serverApi.metadata as { uid: string }).uid).replaceAll('-', '_');
    const server = await topo.addPod('server', {
      node: NODE,
      cgroup: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${serverUid}.slice`,
    });
    await api.writeStatus({ ...serverApi, status: { phase: 'Running', podIP: server.ip, qosClass: 'Burstable' } });
    const sandbox = server.spawn('sleep', ['3600'], { container: `cri-containerd-${containerId()}.scope` });
    sandbox.on('error', () => undefined);
    stack.defer(() => {
      sandbox.kill('SIGKILL');
    });
    await serveGreetingApp(server, 8080, 'failclosed', stack);

    const dir = await tempDir(stack, 'failclosed');
    const caDir = join(dir, 'ca');
    await mkdir(caDir);
    await writeCaDir(caDir);
    const configPath = join(dir, 'mesh.yaml');
    await writeFile(configPath, meshYaml([server]));
    const pinRoot = `${topo.pinRoot}-${NODE}`;
    stack.defer(() => uninstallPins(pinRoot));
    const adminOpts = {
      node: NODE,
      configPath,
      cgroupRoot: topo.nodeCgroup(NODE),
      pinRoot,
      statePath: join(dir, 'pods.json'),
      caDir,
    };
    const zt: NodeZtunnel = await startNodeZtunnel({ ...adminOpts, kubeconfigPath: api.kubeconfigPath }, stack);
    await zt.logs.waitFor((l) => l.msg === 'fail-closed guard armed');
    await zt.logs.waitFor((l) => l.msg === 'node agent: pod enrolled' && l.pod === 'server');
    const target = { ip: server.ip, port: 8080 };
    /** The peer's inbound connections from `ip`, split by how they arrived. */
    const inboundFrom = (ip: string) => {
      const lines = zt.logs.lines.filter(
        (l) =>
          l.msg === 'connection complete' &&
          l.direction === 'inbound' &&
          l['dst.addr'] === `${server.ip}:8080` &&
          String(l['src.addr']).startsWith(`${ip}:`),
      );
      return {
        hbone: lines.filter((l) => l['src.identity'] !== undefined).length,
        plaintext: lines.filter((l) => l['src.identity'] === undefined).length,
      };
    };

    await t.test('an ambient pod is refused (EPERM) until enrolled, then captured', async () => {
      // Not in the mesh config yet: the agent classifies it ambient but cannot enroll it.
      const fresh = await startPodWithLoop(api, topo, stack, 'fresh', 'demo', 'burstable', target);
      await zt.logs.waitFor(
        (l) =>
          l.msg === 'node agent: pod not enrolled yet' &&
          l.pod === 'fresh' &&
          l.code === 'FERRY_INPOD_UNKNOWN_WORKLOAD',
      );
      const classified = await zt.logs.waitFor((l) => l.msg === 'node agent: pod classified' && l.pod === 'fresh');
      assert.equal(classified.class, 'ambient');
      await fresh.loop.waitFor(() => fresh.loop.seen.filter((a) => a.code === 'EPERM').length >= 3);
      assert.deepEqual(
        fresh.loop.seen.filter((a) => a.ok),
        [],
        'nothing gets through before enrollment',
      );
      await writeFile(configPath, meshYaml([server, fresh.pod]));
      zt.reload();
      const first = await fresh.loop.waitFor((a) => a.ok);
      fresh.stop();
      assert.equal(first.remote, '127.0.0.6');
      await zt.logs.waitFor(() => inboundFrom(fresh.pod.ip).hbone >= 1);
      assert.equal(inboundFrom(fresh.pod.ip).plaintext, 0, 'no connection of the ambient pod arrived in plaintext');
      const refused = fresh.loop.seen.filter((a) => a.code === 'EPERM').length;
      const metrics = await zt.metrics();
      assert.ok(metrics.sum('ferry_redirect_outbound_refused_total') >= refused);
      t.diagnostic(
        `ambient pod: ${refused} connects refused before its enrollment (${first.ms} ms after start); classified ${String(classified.cgroupAgeMs)} ms after its cgroup appeared (via ${String(classified.via)})`,
      );
    });

    await t.test('a pod outside the mesh is exempted and connects directly', async () => {
      const bystander = await startPodWithLoop(api, topo, stack, 'bystander', 'plain', 'besteffort', target);
      const first = await bystander.loop.waitFor((a) => a.ok);
      bystander.stop();
      assert.equal(first.remote, '127.0.0.6'); // the peer's side steers it in
      // Not captured on its own side: it arrives in plaintext, without a source identity.
      await zt.logs.waitFor(() => inboundFrom(bystander.pod.ip).plaintext >= 1);
      assert.equal(inboundFrom(bystander.pod.ip).hbone, 0);
      const classified = await zt.logs.waitFor((l) => l.msg === 'node agent: pod classified' && l.pod === 'bystander');
      assert.equal(classified.class, 'exempt');
      const refused = bystander.loop.seen.filter((a) => a.code === 'EPERM').length;
      t.diagnostic(
        `exempt pod: ${refused} connects refused, first direct one ${first.ms} ms after start; classified ${String(classified.cgroupAgeMs)} ms after its cgroup appeared (via ${String(classified.via)})`,
      );
    });

    await t.test('a deleted pod loses its classification: its leftovers are refused', async () => {
      await api.remove('v1', 'Pod', 'plain', 'bystander');
      await zt.logs.waitFor((l) => l.msg === 'node agent: classification removed (pod gone)');
      const pod = topo.pod('bystander');
      const res = await pod.run(process.execPath, ['-e', LOOP_CLIENT_ONCE, server.ip, '8080']);
      assert.equal(res.stdout.trim(), 'EPERM');
    });

    await t.test('no connection of the ambient pod ever reached the peer in plaintext', () => {
      assert.equal(inboundFrom(topo.pod('fresh').ip).plaintext, 0);
    });

    await t.test(
      'admin-enrolled mode on the same pins turns the guard off: unknown pods connect as before',
      async () => {
        await zt.stop();
        const admin = await startNodeZtunnel(adminOpts, stack);
        await admin.logs.waitFor(
          (l) => l.msg === 'fail-closed guard left by a node agent turned off (admin-enrolled mode)',
        );
        const pod = topo.pod('bystander');
        const res = await pod.run(process.execPath, ['-e', LOOP_CLIENT_ONCE, server.ip, '8080']);
        assert.equal(res.stdout.trim(), 'connected');
        await admin.stop();
      },
    );
  },
  { timeout: 180_000 },
);

const LOOP_CLIENT_ONCE = `
const s = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]) });
s.on('connect', () => { console.log('connected'); s.destroy(); });
s.on('error', (e) => console.log(e.code));
`;

privilegedTest('leaves no netns, cgroup or pin behind', async () => {
  assert.deepEqual(leftoversOfThisProcess(), []);
});
