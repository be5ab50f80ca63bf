// `ferry up --bare`: a local Kubernetes without the mesh (docs/architecture.md "Bare cluster"). Builds the
// cluster network (the bridge netns) and cgroup tree, starts the API server as a journaled system process
// (state and credentials in <stateDir>/apiserver, 127.0.0.1, bearer token, graceful pod deletion), which
// writes <stateDir>/kubeconfig; registers one Node per node (podCIDR <a.b>.n.0/24), starts one kubelet per
// node and the kube-controllers (scheduler, Deployment/ReplicaSet/DaemonSet controllers, garbage
// collector), waits until every node reports Ready, then starts the supervisor that restarts any of them.
// From then on the API is the source of truth for pods: `kubectl apply` creates them, the kubelets run them.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { isJson, KubeClient, loadKubeConfig } from '../kube/client.ts';
import { KubeError } from '../kube/errors.ts';
import type { SidecarInjectionValues } from './apiserver/sidecar-admission.ts';
import {
  APISERVER_ROLE,
  type BareClusterConfig,
  bareLaunches,
  KUBE_CONTROLLERS_ROLE,
  kubeconfigPath,
  readBareConfig,
  SIDECAR_INJECTION_FILE,
  writeBareConfig,
} from './bare-files.ts';
import type { ClusterCliEnv } from './cli-env.ts';
import { checkHost, refuseExisting, requireCgroup2, requireRoot } from './cluster.ts';
import { LocalControllerError } from './controller/errors.ts';
import { writeJsonAtomic } from './controller/mesh-files.ts';
import { ClusterError } from './errors.ts';
import { isRunningPid } from './host.ts';
import { nodeObject } from './kubelet/node-status.ts';
import {
  type ClusterLayout,
  clusterLayout,
  DEFAULT_POD_CIDR,
  MAX_NODES,
  nodeCgroupDir,
  nodeName,
  nodePinRoot,
  parsePodCidr,
} from './layout.ts';
import { createBridge } from './network.ts';
import { startInCgroup } from './pods.ts';
import { freePorts } from './ports.ts';
import { systemProcessAlive } from './restart.ts';
import { StateJournal } from './state.ts';
import { SUPERVISOR_ROLE } from './supervisor.ts';
import { teardownCluster } from './teardown.ts';
import { waitReady } from './wait-ready.ts';

export interface BareUpOptions {
  readonly cluster: string;
  readonly nodes: number;
  readonly out: (line: string) => void;
  /** How long to wait for the API server and every node to be Ready (default 120 s). */
  readonly readyTimeoutMs?: number;
  /** False: the caller adds more (the mesh, `ferry up --api`) and starts the supervisor itself. */
  readonly startSupervisor?: boolean;
  /** The mesh's sidecar injection on pod CREATE (`ferry up --api`), given the pods' gateway address. */
  readonly sidecarInjection?: (gateway: string) => SidecarInjectionValues;
}

export interface BareNode {
  readonly index: number;
  readonly name: string;
  readonly podCidr: string;
  /** Where the node's pod slices live (kubepods.slice below it); its ztunnel attaches here. */
  readonly cgroupDir: string;
  readonly pinRoot: string;
}

export interface BareCluster {
  readonly layout: ClusterLayout;
  readonly kubeconfigPath: string;
  readonly apiserverUrl: string;
  /** The pods' default gateway (in the bridge netns), where a cluster DNS would listen. */
  readonly gateway: string;
  readonly nodes: readonly BareNode[];
  readonly journal: StateJournal;
  /** Starts a further journaled system process of the cluster (the mesh's controller, ztunnels …). */
  startSystemProcess(role: string, args: readonly string[], env?: Readonly<Record<string, string>>): Promise<number>;
}

const DEFAULT_READY_TIMEOUT_MS = 120_000;

/** Creates a bare cluster and returns once the API answers and every node is Ready. */
export async function startBareCluster(env: ClusterCliEnv, opts: BareUpOptions): Promise<BareCluster> {
  const out = opts.out;
  requireRoot();
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > MAX_NODES) {
    throw new ClusterError('FERRY_CLUSTER_INVALID_SPEC', `--nodes: ${opts.nodes} is not an integer in 1..${MAX_NODES}`);
  }
  const layout = clusterLayout(opts.cluster, { stateRoot: env.stateRoot, cgroup2Root: requireCgroup2() });
  checkHost(layout, env.baseEnv.PATH ?? '', out);
  refuseExisting(layout);
  const journal = new StateJournal(layout.stateDir);
  const deadline = Date.now() + (opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  try {
    return await build(env, layout, journal, opts, deadline);
  } catch (err) {
    out(`failed: ${err instanceof Error ? err.message : String(err)}`);
    if (err instanceof LocalControllerError) throw err; // a process did not come up: left for inspection
    await teardownCluster(layout, { signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
    throw err;
  }
}

async function build(
  env: ClusterCliEnv,
  layout: ClusterLayout,
  journal: StateJournal,
  opts: BareUpOptions,
  deadline: number,
): Promise<BareCluster> {
  const out = opts.out;
  journal.record({ kind: 'cluster', name: opts.cluster, createdAtMs: Date.now(), nodes: opts.nodes });
  for (const dir of [layout.cgroupDir, layout.podsCgroupDir, layout.systemCgroupDir]) {
    journal.record({ kind: 'cgroup', path: dir });
    mkdirSync(dir, { recursive: true });
  }
  for (let n = 0; n < opts.nodes; n++) journal.record({ kind: 'pin-root', path: nodePinRoot(layout, n) });
  journal.record({ kind: 'pin-root', path: layout.pinRoot });
  const { a, b } = parsePodCidr(DEFAULT_POD_CIDR);
  const gateway = `${a}.${b}.255.254`;
  out(`network: bridge ${layout.bridgeNetns} (gateway ${gateway})`);
  await createBridge(layout, journal, gateway);
  const nodes: BareNode[] = Array.from({ length: opts.nodes }, (_, index) => ({
    index,
    name: nodeName(index),
    podCidr: `${a}.${b}.${index}.0/24`,
    cgroupDir: nodeCgroupDir(layout, index),
    pinRoot: nodePinRoot(layout, index),
  }));
  for (const node of nodes) {
    journal.record({ kind: 'cgroup', path: node.cgroupDir });
    mkdirSync(node.cgroupDir, { recursive: true });
  }
  const [port] = await freePorts(1);
  const config: BareClusterConfig = {
    cluster: opts.cluster,
    nodes: opts.nodes,
    podCidr: DEFAULT_POD_CIDR,
    apiserverPort: port ?? 6443,
    ...(opts.sidecarInjection === undefined ? {} : { sidecarInjection: true }),
  };
  if (opts.sidecarInjection !== undefined) {
    await writeJsonAtomic(join(layout.stateDir, SIDECAR_INJECTION_FILE), opts.sidecarInjection(gateway));
  }
  await writeBareConfig(layout.stateDir, config);
  const startSystemProcess = (role: string, args: readonly string[], extra: Readonly<Record<string, string>> = {}) =>
    startInCgroup(journal, join(layout.systemCgroupDir, role), role, [...env.ferryArgv, ...args], {
      env: { ...env.baseEnv, ...extra },
      logFile: join(layout.logDir, `${role}.log`),
    });
  const launches = bareLaunches(layout);
  const launch = (role: string) => {
    const l = launches.find((x) => x.role === role);
    if (l === undefined) throw new Error(`unreachable: no launch for ${role}`);
    return startSystemProcess(l.role, l.args, l.env);
  };

  out(`starting the API server on 127.0.0.1:${config.apiserverPort}`);
  const apiPid = await launch(APISERVER_ROLE);
  const kubeconfig = kubeconfigPath(layout.stateDir);
  const client = await waitFor('API server ready', layout, APISERVER_ROLE, apiPid, deadline, async () => {
    if (!existsSync(kubeconfig)) return false;
    const c = new KubeClient(loadKubeConfig({ kubeconfigPath: kubeconfig }));
    await c.get('/version');
    return c;
  });
  try {
    for (const node of nodes) await registerNode(client, node);
    out(`registered ${nodes.length} node(s): ${nodes.map((n) => `${n.name} (${n.podCidr})`).join(', ')}`);
    const pids = new Map<string, number>();
    for (const l of launches) {
      if (l.role === APISERVER_ROLE) continue;
      pids.set(l.role, await launch(l.role));
      out(`started ${l.role}`);
    }
    for (const node of nodes) {
      await waitFor(
        `${node.name} Ready`,
        layout,
        `kubelet-${node.name}`,
        pids.get(`kubelet-${node.name}`) ?? 0,
        deadline,
        async () => nodeReady(await client.get(`/api/v1/nodes/${node.name}`)),
      );
      out(`  ${node.name} Ready`);
    }
    if (!isRunningPid(pids.get(KUBE_CONTROLLERS_ROLE) ?? 0)) {
      throw new LocalControllerError(
        'FERRY_LOCAL_NOT_READY',
        `${KUBE_CONTROLLERS_ROLE} exited; see ferry logs ${KUBE_CONTROLLERS_ROLE}`,
      );
    }
  } finally {
    client.close();
  }
  if (opts.startSupervisor !== false) {
    journal.record({ kind: 'ready' });
    const supervisorPid = await startSystemProcess(SUPERVISOR_ROLE, ['supervise', '--cluster', opts.cluster]);
    out(`started the supervisor (pid ${supervisorPid}): the API server, kubelets and controllers are restarted`);
  }
  return {
    layout,
    kubeconfigPath: kubeconfig,
    apiserverUrl: `https://127.0.0.1:${config.apiserverPort}`,
    gateway,
    nodes,
    journal,
    startSystemProcess,
  };
}

/** `ferry up --bare` on a cluster that is up: nothing to create; a dead supervisor is started again. */
export async function bareAlreadyUp(
  env: ClusterCliEnv,
  cluster: string,
  out: (line: string) => void,
): Promise<boolean> {
  const layout = clusterLayout(cluster, { stateRoot: env.stateRoot, cgroup2Root: requireCgroup2() });
  if (readBareConfig(layout.stateDir) === null) return false;
  if (!systemProcessAlive(layout, SUPERVISOR_ROLE)) {
    const journal = new StateJournal(layout.stateDir);
    const pid = await startInCgroup(
      journal,
      join(layout.systemCgroupDir, SUPERVISOR_ROLE),
      SUPERVISOR_ROLE,
      [...env.ferryArgv, 'supervise', '--cluster', cluster],
      { env: { ...env.baseEnv }, logFile: join(layout.logDir, `${SUPERVISOR_ROLE}.log`) },
    );
    out(`the supervisor was not running: started it (pid ${pid})`);
  }
  out(`cluster ${cluster} is already up: kubectl --kubeconfig ${kubeconfigPath(layout.stateDir)} get nodes`);
  return true;
}

async function registerNode(client: KubeClient, node: BareNode): Promise<void> {
  try {
    await client.request('POST', '/api/v1/nodes', { json: nodeObject(node.name, node.podCidr) });
  } catch (err) {
    if (!(err instanceof KubeError && err.status === 409)) throw err; // 409: registered by an earlier try
  }
}

function nodeReady(node: unknown): boolean {
  const status = isJson(node) && isJson(node.status) ? node.status : {};
  const conditions = Array.isArray(status.conditions) ? status.conditions.filter(isJson) : [];
  return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Waits for `check` (wait-ready.ts): FERRY_LOCAL_NOT_READY when `pid` exits or the deadline passes. */
function waitFor<T>(
  what: string,
  layout: ClusterLayout,
  log: string,
  pid: number,
  deadline: number,
  check: () => Promise<T | false>,
): Promise<T> {
  return waitReady({ what, pid, logDir: layout.logDir, log, deadline, check, maxPollMs: 500 });
}
