// End to end: `ferry up --bare` makes a local Kubernetes that the real kubectl v1.34 drives. Two nodes; a
// Deployment of the built-in echo app (3 replicas) and a Debian-curl client are applied; the pods run, get
// IPs from their node's podCIDR and spread over both nodes; the client reaches every echo pod on its IP
// (Debian's /usr/bin/curl via `ferry exec`); the pod cgroups are exactly the systemd driver's layout;
// `kubectl scale` to 1 removes two pods with their netns and cgroups; a pod created later works;
// `kubectl rollout restart` + `rollout status` completes; kill -9 of a kubelet keeps its pods running
// (the restarted one adopts them); `kubectl delete deployment` cascades; `ferry down` leaves nothing.
// One cluster for the file; `down` and the leftover check are registered before `up` runs.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { cgroup2MountPoint } from '../../src/redirect-bpf/probe.ts';
import { privilegedTest } from '../../testkit/privileged.ts';
import { FerryCli, kubectl, type Run } from '../helpers/cluster-cli.ts';

const WORKLOADS = fileURLToPath(new URL('./fixtures/bare-workloads.yaml', import.meta.url));
const GUARANTEED_POD = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'late', labels: { app: 'late' } },
  spec: {
    containers: [
      {
        name: 'echo',
        image: 'ferry/echo',
        ports: [{ containerPort: 8080 }],
        resources: { limits: { cpu: '100m', memory: '64Mi' } },
      },
    ],
  },
};

const CRASHER = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'crasher', labels: { app: 'crasher' } },
  spec: {
    terminationGracePeriodSeconds: 1,
    containers: [{ name: 'crasher', image: 'busybox', command: ['sh', '-c', 'sleep 1; exit 3'] }],
  },
};

const DAEMON_SET = {
  apiVersion: 'apps/v1',
  kind: 'DaemonSet',
  metadata: { name: 'agent' },
  spec: {
    selector: { matchLabels: { app: 'agent' } },
    template: {
      metadata: { labels: { app: 'agent' } },
      spec: { hostNetwork: true, terminationGracePeriodSeconds: 1, containers: [{ name: 'agent', image: 'debian' }] },
    },
  },
};

interface Pod {
  metadata: { name: string; uid: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status: {
    phase?: string;
    podIP?: string;
    qosClass?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: {
      restartCount: number;
      containerID?: string;
      lastState?: { terminated?: { exitCode: number } };
    }[];
  };
}

async function ok(run: Promise<Run>): Promise<string> {
  const r = await run;
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Polls until `check` returns a value (bounded by the test's timeout; no timing assertion). */
async function eventually<T>(check: () => Promise<T | undefined>): Promise<T> {
  for (let waitMs = 50; ; waitMs = Math.min(waitMs * 2, 500)) {
    const v = await check();
    if (v !== undefined) return v;
    await delay(waitMs);
  }
}

function isReady(p: Pod): boolean {
  return (
    p.status.phase === 'Running' && (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

function sliceDir(cluster: string, pod: Pod, qos: 'besteffort' | 'burstable' | 'guaranteed'): string {
  const root = cgroup2MountPoint();
  assert.ok(root !== null);
  const uid = pod.metadata.uid.replaceAll('-', '_');
  const node = join(root, 'ferry.slice', cluster, 'pods', pod.spec.nodeName ?? '?', 'kubepods.slice');
  return qos === 'guaranteed'
    ? join(node, `kubepods-pod${uid}.slice`)
    : join(node, `kubepods-${qos}.slice`, `kubepods-${qos}-pod${uid}.slice`);
}

function scopesOf(dir: string): string[] {
  return readdirSync(dir).filter((d) => d.endsWith('.scope'));
}

function procsOf(dir: string): number[] {
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

function netnsOf(cluster: string, pod: Pod): string {
  return `/run/netns/ferry-${cluster}_default_${pod.metadata.name}`;
}

privilegedTest(
  'ferry up --bare: kubectl drives pods, deployments and rollouts on a 2-node local cluster',

  async (t: TestContext) => {
    const cli = new FerryCli('bare');
    const cluster = `ferrytest-${process.pid}-bare`;
    t.after(async () => {
      const down = await cli.run(['down', '--cluster', cluster]);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual(cli.leftovers(cluster), []);
      cli.remove();
    });
    const up = await cli.run(['up', '--bare', '--nodes', '2', '--cluster', cluster]);
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
    const kubeconfig = (await ok(cli.run(['kubeconfig', '--cluster', cluster]))).trim();
    const k = (...args: string[]) => ok(kubectl(kubeconfig, args));
    const pods = async (selector: string): Promise<Pod[]> =>
      (JSON.parse(await k('get', 'pods', '-l', selector, '-o', 'json')) as { items: Pod[] }).items;

    const nodes = JSON.parse(await k('get', 'nodes', '-o', 'json')) as { items: { spec: { podCIDR: string } }[] };
    assert.deepEqual(
      nodes.items.map((n) => n.spec.podCIDR),
      ['10.244.0.0/24', '10.244.1.0/24'],
    );

    await k('apply', '-f', WORKLOADS);
    await k('rollout', 'status', 'deployment/echo', '--timeout=120s');
    await k('rollout', 'status', 'deployment/client', '--timeout=120s');
    const echo = await pods('app=echo');
    assert.equal(echo.length, 3);
    assert.ok(echo.every(isReady));
    assert.deepEqual(
      new Set(echo.map((p) => p.spec.nodeName)),
      new Set(['node-0', 'node-1']),
      'spread over both nodes',
    );
    for (const p of echo) {
      const n = Number((p.spec.nodeName ?? '').slice(5));
      assert.match(p.status.podIP ?? '', new RegExp(`^10\\.244\\.${n}\\.\\d+$`), 'IP from the node podCIDR');
    }
    const [client] = await pods('app=client');
    assert.ok(client !== undefined);

    await t.test('the client pod reaches every echo pod on its IP with Debian curl', async () => {
      for (const p of echo) {
        const r = await cli.run([
          'exec',
          '--cluster',
          cluster,
          `default/${client.metadata.name}`,
          '--',
          '/usr/bin/curl',
          '-s',
          '-m',
          '10',
          `http://${p.status.podIP}:8080/`,
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(p.metadata.name));
      }
    });

    await t.test('pod cgroups follow the systemd driver: kubepods.slice/kubepods-<qos>.slice/…pod<uid_>.slice', () => {
      const [p] = echo;
      assert.ok(p !== undefined);
      assert.equal(p.status.qosClass, 'BestEffort');
      const dir = sliceDir(cluster, p, 'besteffort');
      const scopes = scopesOf(dir);
      assert.equal(scopes.length, 2, 'the sandbox and the container');
      for (const s of scopes) {
        assert.match(s, /^cri-containerd-[0-9a-f]{64}\.scope$/);
        assert.ok(procsOf(join(dir, s)).length > 0, `${s} runs a process`);
      }
      assert.equal(client.status.qosClass, 'Burstable');
      assert.ok(existsSync(sliceDir(cluster, client, 'burstable')));
    });

    await t.test('a pod created after up runs (Guaranteed: its slice sits directly in kubepods.slice)', async () => {
      await ok(kubectl(kubeconfig, ['apply', '-f', '-'], JSON.stringify(GUARANTEED_POD)));
      await k('wait', '--for=condition=Ready', 'pod/late', '--timeout=120s');
      const [late] = await pods('app=late');
      assert.ok(late !== undefined);
      assert.equal(late.status.qosClass, 'Guaranteed');
      assert.equal(scopesOf(sliceDir(cluster, late, 'guaranteed')).length, 2);
      const r = await cli.run([
        'exec',
        '--cluster',
        cluster,
        `default/${client.metadata.name}`,
        '--',
        '/usr/bin/curl',
        '-s',
        '-m',
        '10',
        `http://${late.status.podIP}:8080/`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /late/);
    });

    await t.test('nodeSelector: Unschedulable until a node has the label, then bound to that node', async () => {
      const picky = {
        ...GUARANTEED_POD,
        metadata: { name: 'picky', labels: { app: 'picky' } },
        spec: { ...GUARANTEED_POD.spec, nodeSelector: { disk: 'ssd' } },
      };
      await ok(kubectl(kubeconfig, ['apply', '-f', '-'], JSON.stringify(picky)));
      await eventually(async () => {
        const [p] = await pods('app=picky');
        return p?.status.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False') ? true : undefined;
      });
      await k('label', 'node', 'node-1', 'disk=ssd');
      await k('wait', '--for=condition=Ready', 'pod/picky', '--timeout=120s');
      const [p] = await pods('app=picky');
      assert.equal(p?.spec.nodeName, 'node-1');
      await k('delete', 'pod', 'picky', '--timeout=120s');
    });

    await t.test('kubectl scale to 1 removes two pods with their netns and cgroups', async () => {
      await k('scale', 'deployment/echo', '--replicas=1');
      const left = await eventually(async () => {
        const now = await pods('app=echo');
        return now.length === 1 ? now : undefined;
      });
      const gone = echo.filter((p) => p.metadata.uid !== left[0]?.metadata.uid);
      assert.equal(gone.length, 2);
      for (const p of gone) {
        assert.equal(existsSync(netnsOf(cluster, p)), false, `netns of ${p.metadata.name}`);
        assert.equal(existsSync(sliceDir(cluster, p, 'besteffort')), false, `slice of ${p.metadata.name}`);
      }
      await k('rollout', 'status', 'deployment/echo', '--timeout=120s');
    });

    await t.test('kubectl rollout restart replaces the pods and rollout status completes', async () => {
      await k('scale', 'deployment/echo', '--replicas=2');
      await k('rollout', 'status', 'deployment/echo', '--timeout=120s');
      const before = new Set((await pods('app=echo')).map((p) => p.metadata.uid));
      await k('rollout', 'restart', 'deployment/echo');
      await k('rollout', 'status', 'deployment/echo', '--timeout=120s');
      const after = await eventually(async () => {
        const now = await pods('app=echo');
        return now.length === 2 && now.every((p) => p.metadata.deletionTimestamp === undefined) ? now : undefined;
      });
      assert.ok(after.every((p) => !before.has(p.metadata.uid) && isReady(p)));
      const rs = JSON.parse(await k('get', 'replicasets', '-l', 'app=echo', '-o', 'json')) as { items: unknown[] };
      assert.equal(rs.items.length, 2, 'the old ReplicaSet stays, scaled to 0');
    });

    await t.test('kill -9 of a kubelet: the restarted one adopts its pods without restarting them', async () => {
      const node = client.spec.nodeName ?? '';
      const dir = sliceDir(cluster, client, 'burstable');
      const procsBefore = scopesOf(dir).flatMap((s) => procsOf(join(dir, s)));
      const journal = join(cli.stateRoot, cluster, 'objects.jsonl');
      const kubeletPid = (): number | undefined =>
        readFileSync(journal, 'utf8')
          .split('\n')
          .filter((l) => l.includes(`"role":"kubelet-${node}"`))
          .map((l) => (JSON.parse(l) as { pid: number }).pid)
          .at(-1);
      const old = kubeletPid();
      assert.ok(old !== undefined);
      process.kill(old, 'SIGKILL');
      const log = join(cli.stateRoot, cluster, 'logs', `kubelet-${node}.log`);
      await eventually(async () => {
        const lines = readFileSync(log, 'utf8')
          .split('\n')
          .filter((l) => l.includes('"kubelet starting"'));
        const last = lines.at(-1);
        return last !== undefined && !last.includes(`"pid":${old},`) ? true : undefined;
      });
      assert.notEqual(kubeletPid(), old);
      // A write through the new kubelet proves it is past adoption and serving: the late pod (on some node)
      // is deleted and the client's pod, untouched, keeps its processes and restart count.
      await k('delete', 'pod', 'late', '--timeout=120s');
      assert.deepEqual(
        scopesOf(dir).flatMap((s) => procsOf(join(dir, s))),
        procsBefore,
      );
      const [same] = await pods('app=client');
      assert.equal(same?.metadata.uid, client.metadata.uid);
      assert.equal(same?.status.containerStatuses?.[0]?.restartCount, 0);
      assert.ok(same !== undefined && isReady(same));
    });

    await t.test('a DaemonSet runs one pod per node (hostNetwork: in the host netns, podIP = hostIP)', async () => {
      await ok(kubectl(kubeconfig, ['apply', '-f', '-'], JSON.stringify(DAEMON_SET)));
      await k('rollout', 'status', 'daemonset/agent', '--timeout=120s');
      const agents = await pods('app=agent');
      assert.deepEqual(agents.map((p) => p.spec.nodeName).sort(), ['node-0', 'node-1']);
      for (const p of agents) {
        assert.ok(isReady(p));
        assert.equal(p.status.podIP, '127.0.0.1');
        assert.equal(existsSync(netnsOf(cluster, p)), false, 'no netns of its own');
      }
      await k('delete', 'daemonset', 'agent');
      await eventually(async () => ((await pods('app=agent')).length === 0 ? true : undefined));
    });

    await t.test('a container that exits is restarted (restartPolicy Always) with its exit code reported', async () => {
      await ok(kubectl(kubeconfig, ['apply', '-f', '-'], JSON.stringify(CRASHER)));
      const crashed = await eventually(async () => {
        const [p] = await pods('app=crasher');
        const s = p?.status.containerStatuses?.[0];
        return s !== undefined && s.restartCount >= 1 && s.lastState?.terminated !== undefined ? s : undefined;
      });
      assert.equal(crashed.lastState?.terminated?.exitCode, 3);
      await k('delete', 'pod', 'crasher', '--timeout=120s');
    });

    await t.test(
      'kill -9 of the API server: the supervisor restarts it, nothing is lost, the nodes carry on',
      async () => {
        const journal = join(cli.stateRoot, cluster, 'objects.jsonl');
        const apiPids = (): number[] =>
          readFileSync(journal, 'utf8')
            .split('\n')
            .filter((l) => l.includes('"role":"apiserver"'))
            .map((l) => (JSON.parse(l) as { pid: number }).pid);
        const old = apiPids().at(-1);
        assert.ok(old !== undefined);
        process.kill(old, 'SIGKILL');
        await eventually(async () => (apiPids().at(-1) !== old ? true : undefined));
        await eventually(async () => ((await kubectl(kubeconfig, ['get', 'nodes'])).code === 0 ? true : undefined));
        const [same] = await pods('app=client');
        assert.equal(same?.metadata.uid, client.metadata.uid, 'acknowledged state survived');
        await k('scale', 'deployment/client', '--replicas=2');
        await k('rollout', 'status', 'deployment/client', '--timeout=120s');
        assert.equal((await pods('app=client')).filter(isReady).length, 2);
      },
    );

    await t.test('kubectl delete deployment cascades to ReplicaSets and pods', async () => {
      const last = await pods('app=echo');
      await k('delete', 'deployment', 'echo');
      await eventually(async () => {
        const rs = JSON.parse(await k('get', 'replicasets', '-l', 'app=echo', '-o', 'json')) as { items: unknown[] };
        return rs.items.length === 0 && (await pods('app=echo')).length === 0 ? true : undefined;
      });
      for (const p of last) assert.equal(existsSync(netnsOf(cluster, p)), false);
    });
  },
  { timeout: 600_000 },
);
