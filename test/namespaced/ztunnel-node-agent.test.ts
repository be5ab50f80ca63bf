// The ztunnel's node agent on a real kernel (issue 14 §2): a ztunnel with --enroll-from=kubernetes watches
// the local Kubernetes API server for the pods of its node and enrolls the ambient ones, found in cgroup
// trees laid out exactly like the kubelet's (systemd driver: kubepods.slice/…-pod<uid_>.slice with
// cri-containerd-<id>.scope containers; cgroupfs driver: kubepods/pod<uid>/<id>), each with a real sandbox
// process (`sleep`) in the pod's netns. Asserted from the pods' side (a connection between two enrolled
// pods arrives through the ztunnels as 127.0.0.6; an unenrolled one arrives from the pod's own IP), from
// GET /pods on the admin socket and from the agent's logs and metrics. Enrollments are not persisted (as
// the chart runs it), so a restart rebuilds them from the pinned maps and the API. Everything (processes,
// netns, cgroups, pins, API server, files) is torn down also when a test fails.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, type TestContext } from 'node:test';
import { uninstallPins } from '../../src/redirect-bpf/loader.ts';
import { cgroupProcs, leftoversOfThisProcess, sweepTestLeftovers } from '../../testkit/netns.ts';
import { privilegedTest, privilegeProblem } from '../../testkit/privileged.ts';
import { Topology as TopologyClass } from '../../testkit/topology.ts';
import { type NodeZtunnel, serveGreetingApp, startNodeZtunnel, tempDir, writeCaDir } from '../helpers/inpod-nodes.ts';
import { AMBIENT, kubePod, meshYaml, NODE, workloadUid } from '../helpers/kubelet-pods.ts';
import { type LocalApi, startLocalApi } from '../helpers/local-api.ts';
import { type ClientResult, connectFromPod } from '../helpers/stand-in.ts';

before(async () => {
  if (privilegeProblem() === null) await sweepTestLeftovers();
});

function remoteOf(res: ClientResult): string {
  assert.ok(res.ok, `connection failed: ${JSON.stringify(res)}`);
  return String((res.reply as { remote?: unknown }).remote);
}

type LogLine = Record<string, unknown>;

/** The API shows the node agent's annotation (a watch would be no simpler here: bounded polling). */
async function waitForAnnotation(api: LocalApi, pod: string, value: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const meta = (await api.get('v1', 'Pod', 'demo', pod)).metadata as { annotations?: Record<string, string> };
    if (meta.annotations?.['ambient.istio.io/redirection'] === value) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`pod ${pod} never got ambient.istio.io/redirection=${value}`);
}
const enrolledLine = (name: string) => (l: LogLine) => l.msg === 'node agent: pod enrolled' && l.pod === name;
const after = (zt: NodeZtunnel, mark: number, pred: (l: LogLine) => boolean) => (l: LogLine) =>
  zt.logs.lines.indexOf(l) >= mark && pred(l);

async function enrolledUids(zt: NodeZtunnel): Promise<string[]> {
  const res = await zt.admin('GET', '/pods');
  return ((res.json as { pods: { uid: string }[] }).pods ?? []).map((p) => p.uid).sort();
}

privilegedTest(
  'node agent: enrollment decided from the Kubernetes API, pods found in kubelet cgroup trees',
  async (t: TestContext) => {
    const stack = new AsyncDisposableStack();
    t.after(() => stack.disposeAsync());
    const api = await startLocalApi(t);
    const topo = stack.use(await TopologyClass.create('nodeagent'));
    await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo', labels: AMBIENT } });
    // A pod of another node in the same namespace: never this agent's (the field selector).
    await api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'elsewhere', namespace: 'demo' },
      spec: { nodeName: 'node-b', containers: [{ name: 'app', image: 'greeter' }] },
    });
    const web = await kubePod(api, topo, stack, 'web', 'systemd-burstable');
    const db = await kubePod(api, topo, stack, 'db', 'cgroupfs-guaranteed');
    const outside = await topo.addPod('outside', { node: 'node-b' }); // not in the mesh, not on this node
    const marker = `MARKER-${randomUUID()}`;
    for (const p of [web.pod, db.pod, outside]) await serveGreetingApp(p, 8080, marker, stack);

    const dir = await tempDir(stack, 'nodeagent');
    const caDir = join(dir, 'ca');
    await mkdir(caDir);
    await writeCaDir(caDir);
    const configPath = join(dir, 'mesh.yaml');
    const late = await kubePod(api, topo, stack, 'late', 'systemd-besteffort', { sandbox: false });
    // `late` is not in the mesh config yet: its enrollment waits for the config that names it.
    await writeFile(configPath, meshYaml([web.pod, db.pod]));
    const pinRoot = `${topo.pinRoot}-${NODE}`;
    stack.defer(() => uninstallPins(pinRoot)); // after the ztunnel is gone (LIFO)
    const opts = {
      node: NODE,
      configPath,
      cgroupRoot: topo.nodeCgroup(NODE), // holds both kubepods.slice and kubepods: the agent tries both
      pinRoot,
      statePath: join(dir, 'pods.json'),
      caDir,
      kubeconfigPath: api.kubeconfigPath,
    };
    let zt = await startNodeZtunnel(opts, stack);

    await t.test(
      'ambient pods of this node are enrolled, both cgroup drivers; the sandbox is the netns source',
      async () => {
        const w = await zt.logs.waitFor(enrolledLine('web'));
        assert.equal(w.reason, 'namespace-ambient');
        assert.equal(w.driver, 'systemd');
        assert.equal(w.namespace, 'demo');
        assert.equal(w.podUid, web.uid);
        assert.equal(w.cgroup, web.pod.cgroupPath);
        assert.deepEqual(cgroupProcs(join(web.pod.cgroupPath, web.sandbox)), [w.pid], 'the sandbox process');
        const d = await zt.logs.waitFor(enrolledLine('db'));
        assert.equal(d.driver, 'cgroupfs');
        assert.equal(d.cgroup, db.pod.cgroupPath);
        assert.deepEqual(await enrolledUids(zt), [workloadUid('demo', 'db'), workloadUid('demo', 'web')]);
        const listed = (await zt.admin('GET', '/pods')).json as { pods: { uid: string; netnsPath: string }[] };
        const webNetns = listed.pods.find((p) => p.uid === workloadUid('demo', 'web'))?.netnsPath ?? '';
        assert.match(webNetns, /^\/proc\/\d+\/ns\/net$/);
        // Reported to the controller as Istio's istio-cni does: HBONE may be announced now.
        const annotations = (await api.get('v1', 'Pod', 'demo', 'web')).metadata as { annotations?: object };
        assert.deepEqual(annotations.annotations, { 'ambient.istio.io/redirection': 'enabled' });
      },
    );

    await t.test(
      'a connection from an app container of one enrolled pod to another goes through the ztunnel',
      async () => {
        const before = (await zt.metrics()).sum('ferry_redirect_outbound_redirected_total');
        // From the app container's cgroup: captured through its pod cgroup (the enrolled ancestor).
        assert.equal(remoteOf(await connectFromPod(web.pod, db.pod.ip, 8080, { container: web.app })), '127.0.0.6');
        assert.equal((await zt.metrics()).sum('ferry_redirect_outbound_redirected_total'), before + 1);
        await zt.logs.waitFor(
          (l) => l.msg === 'connection complete' && l.direction === 'inbound' && l['dst.addr'] === `${db.pod.ip}:8080`,
        );
      },
    );

    await t.test('a pod is retried until it has a process and the mesh config names it', async () => {
      const waiting = await zt.logs.waitFor(
        (l) =>
          l.msg === 'node agent: pod not enrolled yet' && l.pod === 'late' && l.code === 'FERRY_NODE_AGENT_NO_PROCESS',
      );
      assert.equal(waiting.podUid, late.uid);
      const failures = await zt.metrics();
      assert.ok(failures.sum('ferry_node_agent_enroll_failures_total', { code: 'FERRY_NODE_AGENT_NO_PROCESS' }) >= 1);
      late.startSandbox();
      const created = await api.get('v1', 'Pod', 'demo', 'late');
      // The kubelet reports the started sandbox: the agent tries the pod again at once.
      await api.writeStatus({ ...created, status: { ...(created.status as object), phase: 'Running' } });
      await zt.logs.waitFor(
        (l) =>
          l.msg === 'node agent: pod not enrolled yet' && l.pod === 'late' && l.code === 'FERRY_INPOD_UNKNOWN_WORKLOAD',
      );
      // The controller's next config names the pod (here: the file, reloaded): enrolled without waiting.
      await writeFile(configPath, meshYaml([web.pod, db.pod, late.pod]));
      zt.reload();
      const enrolled = await zt.logs.waitFor(enrolledLine('late'));
      assert.equal(enrolled.cgroup, late.pod.cgroupPath);
      assert.equal(enrolled.driver, 'systemd');
      assert.deepEqual(await enrolledUids(zt), [
        workloadUid('demo', 'db'),
        workloadUid('demo', 'late'),
        workloadUid('demo', 'web'),
      ]);
    });

    await t.test('restart: pods stay captured while the ztunnel is down; the API decides after', async () => {
      await zt.stop();
      // Pinned capture stays: refused at once, never a plaintext connection around the mesh.
      assert.deepEqual(await connectFromPod(web.pod, outside.ip, 8080), { ok: false, code: 'ECONNREFUSED' });
      // A pod deleted while the agent is down is let go after the restart.
      await api.remove('v1', 'Pod', 'demo', 'late');
      zt = await startNodeZtunnel(opts, stack);
      await zt.logs.waitFor(enrolledLine('web'));
      await zt.logs.waitFor(enrolledLine('db'));
      const unpinned = await zt.logs.waitFor((l) => l.msg === 'unpinned pods no longer enrolled');
      assert.equal((unpinned.unpinned as string[]).length, 1);
      assert.deepEqual(await enrolledUids(zt), [workloadUid('demo', 'db'), workloadUid('demo', 'web')]);
      assert.equal(remoteOf(await connectFromPod(web.pod, db.pod.ip, 8080)), '127.0.0.6');
      // The deleted pod's leftover processes are neither captured nor let out: the fail-closed guard refuses
      // a cgroup under the pod root that belongs to no pod.
      assert.deepEqual(await connectFromPod(late.pod, outside.ip, 8080), { ok: false, code: 'EPERM' });
    });

    await t.test('deleting a pod unenrolls it', async () => {
      const mark = zt.logs.lines.length;
      await api.remove('v1', 'Pod', 'demo', 'db');
      const line = await zt.logs.waitFor(
        after(zt, mark, (l) => l.msg === 'node agent: pod unenrolled' && l.uid === workloadUid('demo', 'db')),
      );
      assert.ok(line.reason === 'pod-gone' || line.reason === 'terminating', String(line.reason));
      assert.deepEqual(await enrolledUids(zt), [workloadUid('demo', 'web')]);
      // db's leftover processes are not captured any more, nor let out (the pod is gone: the guard refuses).
      const refusedBefore = (await zt.metrics()).sum('ferry_redirect_outbound_refused_total');
      assert.deepEqual(await connectFromPod(db.pod, outside.ip, 8080), { ok: false, code: 'EPERM' });
      assert.equal((await zt.metrics()).sum('ferry_redirect_outbound_refused_total'), refusedBefore + 1);
    });

    await t.test('a pod in a terminal phase is let go; the same pod running again is enrolled again', async () => {
      const mark = zt.logs.lines.length;
      const current = await api.get('v1', 'Pod', 'demo', 'web');
      const status = current.status as object;
      await api.writeStatus({ ...current, status: { ...status, phase: 'Succeeded' } });
      const line = await zt.logs.waitFor(
        after(zt, mark, (l) => l.msg === 'node agent: pod unenrolled' && l.pod === 'web'),
      );
      assert.equal(line.reason, 'terminal-phase');
      assert.deepEqual(await enrolledUids(zt), []);
      const again = await api.get('v1', 'Pod', 'demo', 'web');
      await api.writeStatus({ ...again, status: { ...status, phase: 'Running' } });
      await zt.logs.waitFor(after(zt, mark, enrolledLine('web')));
      assert.deepEqual(await enrolledUids(zt), [workloadUid('demo', 'web')]);
    });

    await t.test('labelling the namespace off: annotated disabled, unenrolled once the mesh shows TCP', async () => {
      const mark = zt.logs.lines.length;
      const ns = await api.get('v1', 'Namespace', '', 'demo');
      await api.replace({ ...ns, metadata: { ...(ns.metadata as object), labels: {} } });
      await zt.logs.waitFor(after(zt, mark, (l) => l.msg === 'node agent: releasing pod' && l.pod === 'web'));
      await waitForAnnotation(api, 'web', 'disabled');
      // The mesh (the controller's last config) still says HBONE: peers may tunnel, so web stays captured.
      assert.deepEqual(await enrolledUids(zt), [workloadUid('demo', 'web')]);
      await writeFile(configPath, meshYaml([web.pod], new Set(['web'])));
      zt.reload();
      const line = await zt.logs.waitFor(
        after(zt, mark, (l) => l.msg === 'node agent: pod unenrolled' && l.pod === 'web'),
      );
      assert.equal(line.reason, 'not-labelled');
      assert.deepEqual(await enrolledUids(zt), []);
      assert.equal(remoteOf(await connectFromPod(web.pod, outside.ip, 8080)), web.pod.ip);
      const m = await zt.metrics();
      assert.ok(m.sum('ferry_node_agent_enrollments_total', { action: 'unenroll' }) >= 2);
    });

    await zt.stop();
  },
  { timeout: 180_000 },
);

privilegedTest('leaves no netns, cgroup or pin behind', async () => {
  assert.deepEqual(leftoversOfThisProcess(), []);
});
