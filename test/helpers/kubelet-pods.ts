// Pods as a kubelet lays them out, for the node agent's namespaced tests: a Pod object in the local API
// server, then with the uid it got, the pod's netns and its cgroup tree in the systemd or cgroupfs driver's
// naming (kubepods.slice/…-pod<uid_>.slice with cri-containerd-<id>.scope containers, or
// kubepods/pod<uid>/<id>), a sandbox process, and the status a kubelet reports. Also the mesh config file
// the tests use in place of the controller, and a client that connects in a loop from a pod's container.
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Pod, Topology } from '../../testkit/topology.ts';
import type { LocalApi } from './local-api.ts';

export const NODE = 'node-a';
export const AMBIENT = { 'istio.io/dataplane-mode': 'ambient' };
export const workloadUid = (ns: string, name: string): string => `Kubernetes//Pod/${ns}/${name}`;
export const containerId = (): string => randomUUID().replaceAll('-', '') + randomUUID().replaceAll('-', '');

export type Layout = 'systemd-burstable' | 'cgroupfs-guaranteed' | 'systemd-besteffort';
const QOS: Record<Layout, string> = {
  'systemd-burstable': 'Burstable',
  'cgroupfs-guaranteed': 'Guaranteed',
  'systemd-besteffort': 'BestEffort',
};

/** The kubelet's pod cgroup (under the node's cgroup) and a runtime's container cgroup name. */
export function kubeletLayout(layout: Layout, uid: string, id: string): { cgroup: string; container: string } {
  const u = uid.replaceAll('-', '_');
  switch (layout) {
    case 'systemd-burstable':
      return {
        cgroup: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${u}.slice`,
        container: `cri-containerd-${id}.scope`,
      };
    case 'systemd-besteffort':
      return {
        cgroup: `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${u}.slice`,
        container: `cri-containerd-${id}.scope`,
      };
    case 'cgroupfs-guaranteed':
      return { cgroup: `kubepods/pod${uid}`, container: id };
  }
}

export interface KubePod {
  readonly pod: Pod;
  readonly uid: string;
  readonly sandbox: string;
  readonly app: string;
  /** Starts the pause process (a long `sleep` in the pod's netns) in the sandbox container's cgroup. */
  startSandbox(): void;
}

/** A Pod object in the API and, with the uid the API gave it, its netns and kubelet-shaped cgroup tree. */
export async function kubePod(
  api: LocalApi,
  topo: Topology,
  stack: AsyncDisposableStack,
  name: string,
  layout: Layout,
  opts: { sandbox?: boolean; namespace?: string } = {},
): Promise<KubePod> {
  const created = await api.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: opts.namespace ?? 'demo' },
    spec: { nodeName: NODE, containers: [{ name: 'app', image: 'greeter' }] },
  });
  const uid = String((created.metadata as { uid: string }).uid);
  const sandbox = containerId();
  const app = containerId();
  const where = kubeletLayout(layout, uid, sandbox);
  const pod = await topo.addPod(name, { node: NODE, cgroup: where.cgroup });
  const appCgroup = kubeletLayout(layout, uid, app).container;
  // What a kubelet reports: the QoS class, and the app container's id (the sandbox is not listed).
  await api.writeStatus({
    ...created,
    status: {
      phase: 'Running',
      podIP: pod.ip,
      qosClass: QOS[layout],
      containerStatuses: [{ name: 'app', containerID: `containerd://${app}` }],
    },
  });
  const startSandbox = () => {
    const child = pod.spawn('sleep', ['3600'], { container: where.container });
    child.on('error', () => undefined);
    stack.defer(() => {
      child.kill('SIGKILL');
    });
  };
  if (opts.sandbox !== false) startSandbox();
  return { pod, uid, sandbox: where.container, app: appCgroup, startSandbox };
}

/** The controller's view (here: a file the ztunnel reloads); `tcp` pods are published as plain TCP. */
export function meshYaml(pods: readonly Pod[], tcp: ReadonlySet<string> = new Set()): string {
  const w = (pod: Pod) => `
- uid: ${workloadUid('demo', pod.name)}
  name: ${pod.name}
  namespace: demo
  serviceAccount: ${pod.name}
  workloadIps: ["${pod.ip}"]
  protocol: ${tcp.has(pod.name) ? 'TCP' : 'HBONE'}
  node: ${NODE}`;
  return `workloads:${pods.map(w).join('')}\n`;
}

/** Connects to host:port again and again (20 ms apart), one JSON line per attempt: {ok, remote} or {code}. */
export const LOOP_CLIENT = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const t0 = Date.now();
function attempt() {
  const s = net.connect({ host, port: Number(port) });
  let buf = '';
  let done = false;
  const next = (line) => {
    if (done) return;
    done = true;
    console.log(JSON.stringify({ ...line, ms: Date.now() - t0 }));
    s.destroy();
    setTimeout(attempt, 20);
  };
  s.on('data', (d) => {
    buf += d;
    const nl = buf.indexOf('\\n');
    if (nl >= 0) next({ ok: true, remote: JSON.parse(buf.slice(0, nl)).remote });
  });
  s.on('error', (e) => next({ ok: false, code: e.code }));
  s.on('close', () => next({ ok: false, code: 'closed' }));
}
attempt();
`;

export interface Attempt {
  readonly ok: boolean;
  readonly remote?: string;
  readonly code?: string;
  readonly ms: number;
}

export interface Attempts {
  readonly seen: Attempt[];
  waitFor(pred: (a: Attempt) => boolean): Promise<Attempt>;
}

/** The attempts a looping client printed so far, and a wait for one that matches. */
export function attempts(child: ChildProcessWithoutNullStreams): Attempts {
  const seen: Attempt[] = [];
  const waiters: Array<{ pred: (a: Attempt) => boolean; resolve: (a: Attempt) => void }> = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const a = JSON.parse(line) as Attempt;
    seen.push(a);
    for (const w of [...waiters]) {
      if (w.pred(a)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(a);
      }
    }
  });
  return {
    seen,
    waitFor(pred: (a: Attempt) => boolean): Promise<Attempt> {
      const hit = seen.find(pred);
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
  };
}
