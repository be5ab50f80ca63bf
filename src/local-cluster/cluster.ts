// `createCluster`: the runtime half of `ferry up` (docs/architecture.md "Local cluster"). Checks the host, then builds the network
// (bridge netns, pod netns + veth), the cgroup tree (`ferry.slice/<cluster>/{pods,system}`) and starts every
// container in its pod, journaling each object before creating it so `ferry down` can always clean up.
// It returns handles that the next steps consume: the controller (pod IPs, labels, nodes → mesh state,
// VIPs from ServiceVipAllocator) and one ztunnel per node (started with `startSystemProcess`, attaching the
// redirector at its node's `nodeCgroupDir` with pins under `nodePinRoot`, enrolling pods by `cgroupDir` +
// `netnsPath`).
// A failure part-way tears down what was made, then rethrows.
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { ensureBpffs } from '../redirect-bpf/bpffs.ts';
import { probeFeatures } from '../redirect-bpf/probe.ts';
import { podResolvConf, writePodResolvConf } from './dns/resolv-conf.ts';
import { ClusterError } from './errors.ts';
import { listNetns } from './host.ts';
import { type ResolvedCommand, resolveContainerCommand } from './images.ts';
import { type ClusterLayout, type ClusterSpec, clusterLayout, NETNS_DIR, nodePinRoot, planPods } from './layout.ts';
import { createBridge, createPodNetwork } from './network.ts';
import { startContainer, startInCgroup } from './pods.ts';
import { loadState, StateJournal } from './state.ts';
import { teardownCluster } from './teardown.ts';

export interface CreateClusterOptions {
  /** Parent of per-cluster state dirs (`$FERRY_STATE_DIR`, default /run/ferry). */
  readonly stateRoot: string;
  /** How to run this Ferry, e.g. [process.execPath, '/…/src/cli/main.ts']. */
  readonly ferryArgv: readonly [string, ...string[]];
  /** Environment every pod and Ferry process starts from (PATH at least); pod variables are added. */
  readonly baseEnv: Readonly<Record<string, string>>;
  readonly signal: AbortSignal;
  readonly progress?: (line: string) => void;
}

export interface ContainerHandle {
  readonly name: string;
  readonly app: ResolvedCommand['app'];
  readonly pid: number;
  readonly cgroupDir: string;
  readonly logFile: string;
}

export interface PodHandle {
  readonly namespace: string;
  readonly name: string;
  readonly node: number;
  readonly ip: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly netnsPath: string;
  /** The pod's cgroup (containers are children of it): enroll this one. */
  readonly cgroupDir: string;
  readonly containers: readonly ContainerHandle[];
  /** Injected with Ferry's sidecar (started later by `ferry up`, sidecars.ts). */
  readonly sidecar: boolean;
}

export interface NodeHandle {
  readonly index: number;
  readonly name: string;
  readonly podCidr: string;
  readonly pods: readonly PodHandle[];
}

export interface ClusterHandle {
  readonly name: string;
  readonly layout: ClusterLayout;
  readonly nodes: readonly NodeHandle[];
  readonly pods: readonly PodHandle[];
  /** The pods' gateway on the bridge (in the bridge netns): where the cluster DNS answers. */
  readonly gateway: string;
  readonly journal: StateJournal;
  /** Starts a Ferry process (controller, ztunnel) in `system/<role>`, journaled; logs to `<logDir>/<role>.log`. */
  startSystemProcess(role: string, args: readonly string[], env?: Readonly<Record<string, string>>): Promise<number>;
  /** Journals that `up` completed (status shows a cluster without it as half-built). */
  markReady(): void;
}

/** FERRY_CLUSTER_NOT_ROOT unless running as root. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new ClusterError(
      'FERRY_CLUSTER_NOT_ROOT',
      `the local cluster needs root (network namespaces, veths, cgroups, BPF); running as uid ${process.getuid?.()}: run with sudo`,
    );
  }
}

/**
 * Refuses when not root or when the host cannot run the mesh; lists every failed check. A missing bpffs is
 * mounted first (as Cilium's agent does) and reported through `progress`.
 */
export function checkHost(layout: ClusterLayout, path: string, progress: (line: string) => void = () => {}): void {
  requireRoot();
  const bpffs = ensureBpffs(dirname(layout.pinRoot));
  if (bpffs.kind === 'mounted') {
    progress(`bpffs: ${bpffs.dir} had no bpf filesystem: mounted one (${bpffs.command}); it stays mounted`);
  }
  const report = probeFeatures({ pinRoot: layout.pinRoot });
  const failed: { name: string; detail: string }[] = report.checks.filter((c) => !c.ok);
  if (bpffs.kind === 'failed') failed.push({ name: 'bpffs mount', detail: bpffs.detail });
  for (const tool of ['ip', 'nsenter', 'unshare', 'mount', 'sh']) {
    if (!onPath(tool, path))
      failed.push({ name: tool, detail: `${tool} not found on PATH (install iproute2 / util-linux)` });
  }
  if (failed.length > 0) {
    throw new ClusterError(
      'FERRY_CLUSTER_UNSUPPORTED_HOST',
      `this host cannot run the local cluster:\n${failed.map((c) => `  ${c.name}: ${c.detail}`).join('\n')}`,
    );
  }
}

/** The cgroup2 mount, or FERRY_CLUSTER_UNSUPPORTED_HOST. */
export function requireCgroup2(): string {
  const report = probeFeatures();
  if (report.cgroup2Mount === null) {
    throw new ClusterError('FERRY_CLUSTER_UNSUPPORTED_HOST', 'no cgroup2 mount found in /proc/self/mounts');
  }
  return report.cgroup2Mount;
}

export async function createCluster(spec: ClusterSpec, opts: CreateClusterOptions): Promise<ClusterHandle> {
  const progress = opts.progress ?? (() => undefined);
  requireRoot();
  const layout = clusterLayout(spec.name, { stateRoot: opts.stateRoot, cgroup2Root: requireCgroup2() });
  checkHost(layout, opts.baseEnv.PATH ?? '', progress);
  const planned = planPods(layout, spec); // validates the whole spec before anything is created
  const resolved = planned.map((p) => p.spec.containers.map((c) => resolveContainerCommand(c, opts.ferryArgv)));
  refuseExisting(layout);

  const journal = new StateJournal(layout.stateDir);
  try {
    journal.record({ kind: 'cluster', name: spec.name, createdAtMs: Date.now(), nodes: spec.nodes });
    for (const dir of [layout.cgroupDir, layout.podsCgroupDir, layout.systemCgroupDir]) {
      journal.record({ kind: 'cgroup', path: dir });
    }
    mkdirSync(layout.podsCgroupDir, { recursive: true });
    mkdirSync(layout.systemCgroupDir, { recursive: true });
    // Created later by the node ztunnels; node roots first, so `down` unpins their links before the parent.
    for (let n = 0; n < spec.nodes; n++) journal.record({ kind: 'pin-root', path: nodePinRoot(layout, n) });
    journal.record({ kind: 'pin-root', path: layout.pinRoot });
    const gateway = planned[0]?.network.gateway ?? '10.244.255.254';
    progress(`network: bridge ${layout.bridgeNetns} (gateway ${gateway})`);
    await createBridge(layout, journal, gateway);

    const pods: PodHandle[] = [];
    for (const [i, { spec: pod, network }] of planned.entries()) {
      opts.signal.throwIfAborted();
      progress(`pod ${pod.namespace}/${pod.name}: node-${network.node}, ${network.ip}`);
      await createPodNetwork(layout, journal, network);
      // Before any container starts: the launcher mounts it when it exists (pods.ts). Not journaled:
      // `ferry down` sweeps /etc/netns by the cluster's netns prefix (teardown.ts).
      writePodResolvConf(network.netnsName, podResolvConf({ nameserver: gateway, namespace: pod.namespace }));
      const labels = pod.labels ?? {};
      journal.record({
        kind: 'pod',
        namespace: pod.namespace,
        name: pod.name,
        node: network.node,
        ip: network.ip,
        netnsPath: network.netnsPath,
        cgroupDir: network.cgroupDir,
        labels,
        ...(pod.sidecar === true ? { sidecar: true } : {}),
      });
      const containers: ContainerHandle[] = [];
      for (const [j, c] of pod.containers.entries()) {
        const cmd = resolved[i]?.[j];
        if (cmd === undefined) throw new Error('unreachable: resolved commands mismatch the plan');
        const env = {
          ...opts.baseEnv,
          ...c.env,
          POD_NAME: pod.name,
          POD_NAMESPACE: pod.namespace,
          POD_IP: network.ip,
          NODE_NAME: `node-${network.node}`,
          HOSTNAME: pod.name,
        };
        const started = await startContainer(layout, journal, {
          namespace: pod.namespace,
          pod: pod.name,
          container: c.name,
          podCgroupDir: network.cgroupDir,
          netnsPath: network.netnsPath,
          argv: cmd.argv,
          env,
        });
        progress(`  container ${c.name}: ${cmd.app} (pid ${started.pid})`);
        containers.push({ name: c.name, app: cmd.app, ...started });
      }
      pods.push({
        namespace: pod.namespace,
        name: pod.name,
        node: network.node,
        ip: network.ip,
        labels,
        netnsPath: network.netnsPath,
        cgroupDir: network.cgroupDir,
        containers,
        sidecar: pod.sidecar === true,
      });
    }
    return makeHandle(spec, layout, journal, pods, gateway, opts);
  } catch (err) {
    progress(`failed: ${err instanceof Error ? err.message : String(err)}; cleaning up`);
    await teardownCluster(layout, { signal: AbortSignal.timeout(30_000) }).catch((cleanupErr: unknown) => {
      throw new ClusterError(
        'FERRY_CLUSTER_TEARDOWN_INCOMPLETE',
        `cluster ${spec.name} failed to come up and cleanup failed too; run: ferry down --cluster ${spec.name}`,
        { cause: new AggregateError([err, cleanupErr]) },
      );
    });
    throw err;
  }
}

function onPath(tool: string, path: string): boolean {
  return path.split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** FERRY_CLUSTER_EXISTS when state, cgroups or netns of the cluster are already there. */
export function refuseExisting(layout: ClusterLayout): void {
  const leftovers = [
    ...(loadState(layout.stateDir).records.length > 0 ? [layout.stateDir] : []),
    ...(existsSync(layout.cgroupDir) ? [layout.cgroupDir] : []),
    ...listNetns(NETNS_DIR).filter((n) => n.startsWith(layout.netnsPrefix)),
  ];
  if (leftovers.length > 0) {
    throw new ClusterError(
      'FERRY_CLUSTER_EXISTS',
      `cluster ${layout.name} already exists (${leftovers.slice(0, 3).join(', ')}); run: ferry down --cluster ${layout.name}`,
    );
  }
}

function makeHandle(
  spec: ClusterSpec,
  layout: ClusterLayout,
  journal: StateJournal,
  pods: readonly PodHandle[],
  gateway: string,
  opts: CreateClusterOptions,
): ClusterHandle {
  const base = (spec.podCidr ?? '10.244.0.0/16').split('.').slice(0, 2).join('.');
  const nodes = Array.from({ length: spec.nodes }, (_, index) => ({
    index,
    name: `node-${index}`,
    podCidr: `${base}.${index}.0/24`,
    pods: pods.filter((p) => p.node === index),
  }));
  return {
    name: spec.name,
    layout,
    nodes,
    pods,
    gateway,
    journal,
    startSystemProcess: (role, args, env) => {
      if (!/^[a-z0-9-]+$/.test(role)) throw new ClusterError('FERRY_CLUSTER_INVALID_SPEC', `bad process role ${role}`);
      return startInCgroup(journal, join(layout.systemCgroupDir, role), role, [...opts.ferryArgv, ...args], {
        env: { ...opts.baseEnv, ...env },
        logFile: join(layout.logDir, `${role}.log`),
      });
    },
    markReady: () => journal.record({ kind: 'ready' }),
  };
}
