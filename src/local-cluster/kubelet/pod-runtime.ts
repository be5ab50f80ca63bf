// The kubelet's container runtime: turns one pod into host objects and back. A sandbox is the pod's netns
// (veth on the cluster bridge, an IP from the node's /24, network.ts) or the host netns for hostNetwork
// pods, its resolv.conf (dns/resolv-conf.ts), its slice (naming.ts) and a pause process in a scope of its
// own; each container is a process in its own `cri-containerd-<id>.scope` (pods.ts spawnInPod), wrapped
// so that its exit code lands in a file (the kubelet may restart and lose the child). Every object is
// journaled before it is created (state.ts), so `ferry down` finds it after a kill -9. No decisions here.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ETC_NETNS_DIR, podResolvConf, writePodResolvConf } from '../dns/resolv-conf.ts';
import { cgroupProcs, killCgroupTree, processStartTicks, removeCgroupTree, runHost, walkCgroups } from '../host.ts';
import { type ClusterLayout, NETNS_DIR, nodeCgroupDir } from '../layout.ts';
import { createPodNetwork } from '../network.ts';
import { spawnInPod } from '../pods.ts';
import { isErrno, type StateJournal } from '../state.ts';
import { bridgePortName, containerScopeName, podNetnsName, podSlicePath } from './naming.ts';
import type { QosClass } from './pod-qos.ts';
import { podFilesDir } from './pod-volumes.ts';

/**
 * The host network namespace for hostNetwork pods: nsenter opens its own (inherited from the kubelet, which
 * runs in the host netns). Not /proc/1/ns/net: a sandboxed host may refuse to open pid 1's.
 */
export const HOST_NETNS_PATH = '/proc/self/ns/net';

export interface RuntimeContext {
  readonly layout: ClusterLayout;
  readonly journal: StateJournal;
  readonly nodeIndex: number;
  readonly nodeName: string;
  /** `a.b` of the cluster's /16. */
  readonly cidrBase: string;
  readonly gateway: string;
  readonly ferryArgv: readonly [string, ...string[]];
  readonly baseEnv: Readonly<Record<string, string>>;
  /** The API server's port, served on loopback and (relayed) on the gateway: KUBERNETES_SERVICE_*. */
  readonly apiServerPort?: number;
}

export interface RuntimeContainer {
  readonly name: string;
  readonly image: string;
  readonly id: string;
  readonly pid: number;
  readonly startTicks: string;
  readonly startedAt: string;
  readonly restartCount: number;
  readonly lastTermination: {
    readonly exitCode: number;
    readonly startedAt: string;
    readonly finishedAt: string;
  } | null;
}

/** One pod as the kubelet runs it; persisted (kubelet-state.ts) so a restarted kubelet adopts it. */
export interface RuntimePod {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  /** `creating` until the sandbox is complete: a kubelet that finds one after a crash tears it down. */
  readonly phase: 'creating' | 'running';
  readonly qos: QosClass;
  readonly sliceDir: string;
  readonly hostNetwork: boolean;
  readonly netnsName: string | null;
  readonly netnsPath: string;
  readonly ip: string | null;
  readonly hostNumber: number | null;
  readonly startTime: string;
  readonly sandbox: { readonly id: string; readonly pid: number; readonly startTicks: string } | null;
  readonly containers: readonly RuntimeContainer[];
}

export function newContainerId(): string {
  return randomBytes(32).toString('hex');
}

/** The runtime record of a pod about to be created (write it before createSandbox). */
export function planRuntimePod(
  ctx: RuntimeContext,
  pod: { uid: string; namespace: string; name: string; qos: QosClass; hostNetwork: boolean; hostNumber: number | null },
  now: string,
): RuntimePod {
  const netnsName = pod.hostNetwork ? null : podNetnsName(ctx.layout.netnsPrefix, pod.namespace, pod.name);
  return {
    uid: pod.uid,
    namespace: pod.namespace,
    name: pod.name,
    phase: 'creating',
    qos: pod.qos,
    sliceDir: join(nodeCgroupDir(ctx.layout, ctx.nodeIndex), podSlicePath(pod.qos, pod.uid)),
    hostNetwork: pod.hostNetwork,
    netnsName,
    netnsPath: netnsName === null ? HOST_NETNS_PATH : join(NETNS_DIR, netnsName),
    ip: pod.hostNetwork || pod.hostNumber === null ? null : `${ctx.cidrBase}.${ctx.nodeIndex}.${pod.hostNumber}`,
    hostNumber: pod.hostNetwork ? null : pod.hostNumber,
    startTime: now,
    sandbox: null,
    containers: [],
  };
}

/** Creates netns + veth (unless hostNetwork), resolv.conf, the pod slice and the pause process. */
export async function createSandbox(ctx: RuntimeContext, pod: RuntimePod): Promise<RuntimePod> {
  ctx.journal.record({ kind: 'cgroup', path: pod.sliceDir });
  if (pod.netnsName !== null && pod.ip !== null && pod.hostNumber !== null) {
    await createPodNetwork(ctx.layout, ctx.journal, {
      node: ctx.nodeIndex,
      ip: pod.ip,
      prefixLength: 16,
      gateway: ctx.gateway,
      netnsName: pod.netnsName,
      netnsPath: pod.netnsPath,
      cgroupDir: pod.sliceDir,
      bridgePort: bridgePortName(ctx.nodeIndex, pod.hostNumber),
    });
    writePodResolvConf(pod.netnsName, podResolvConf({ nameserver: ctx.gateway, namespace: pod.namespace }));
  }
  mkdirSync(pod.sliceDir, { recursive: true });
  const id = newContainerId();
  const started = await spawnProcess(ctx, pod, id, 'sandbox', ['sleep', 'infinity'], {}, null);
  ctx.journal.record({
    kind: 'pod',
    namespace: pod.namespace,
    name: pod.name,
    node: ctx.nodeIndex,
    ip: pod.ip ?? '127.0.0.1',
    netnsPath: pod.netnsPath,
    cgroupDir: pod.sliceDir,
    labels: {},
  });
  return { ...pod, sandbox: { id, pid: started.pid, startTicks: started.startTicks } };
}

export interface ContainerLaunchSpec {
  readonly name: string;
  readonly image: string;
  readonly argv: readonly [string, ...string[]];
  readonly env: Readonly<Record<string, string>>;
}

/** Starts one container of the pod in a new scope; its exit code goes to `<stateDir>/exit/<id>`. */
export async function startPodContainer(
  ctx: RuntimeContext,
  pod: RuntimePod,
  spec: ContainerLaunchSpec,
): Promise<{ id: string; pid: number; startTicks: string }> {
  const id = newContainerId();
  const exitDir = join(ctx.layout.stateDir, 'exit');
  mkdirSync(exitDir, { recursive: true, mode: 0o700 });
  // $0 the exit file, $@ the command: the code survives the kubelet (a restarted one cannot wait(2) for it).
  const wrapped: [string, ...string[]] = [
    'sh',
    '-c',
    'code=0; "$@" || code=$?; echo "$code" > "$0"; exit "$code"',
    exitFilePath(ctx, id),
    ...spec.argv,
  ];
  const env = {
    ...ctx.baseEnv,
    ...spec.env,
    POD_NAME: pod.name,
    POD_NAMESPACE: pod.namespace,
    POD_IP: pod.ip ?? '127.0.0.1',
    NODE_NAME: ctx.nodeName,
    HOSTNAME: pod.name,
    ...apiServiceEnv(ctx, pod),
  };
  const started = await spawnProcess(ctx, pod, id, spec.name, wrapped, env, spec.name);
  return { id, ...started };
}

// Where an in-cluster client finds the API, as a real kubelet sets it for the `kubernetes` Service: the
// loopback listener from the host netns, the gateway relay (`ferry apiserver --pod-gateway`) from a pod's.
function apiServiceEnv(ctx: RuntimeContext, pod: RuntimePod): Record<string, string> {
  if (ctx.apiServerPort === undefined) return {};
  return {
    KUBERNETES_SERVICE_HOST: pod.hostNetwork ? '127.0.0.1' : ctx.gateway,
    KUBERNETES_SERVICE_PORT: String(ctx.apiServerPort),
  };
}

function exitFilePath(ctx: RuntimeContext, id: string): string {
  return join(ctx.layout.stateDir, 'exit', id);
}

/** The exit code a container wrote, or null when it was killed before it could (counts as 137). */
export function readExitCode(ctx: RuntimeContext, id: string): number | null {
  try {
    const n = Number(readFileSync(exitFilePath(ctx, id), 'utf8').trim());
    return Number.isInteger(n) ? n : null;
  } catch {
    return null;
  }
}

export function forgetExitCode(ctx: RuntimeContext, id: string): void {
  rmSync(exitFilePath(ctx, id), { force: true });
}

async function spawnProcess(
  ctx: RuntimeContext,
  pod: RuntimePod,
  id: string,
  role: string,
  argv: readonly [string, ...string[]],
  env: Readonly<Record<string, string>>,
  logName: string | null,
): Promise<{ pid: number; startTicks: string }> {
  const scope = join(pod.sliceDir, containerScopeName(id));
  ctx.journal.record({ kind: 'cgroup', path: scope });
  mkdirSync(scope, { recursive: true });
  mkdirSync(ctx.layout.logDir, { recursive: true });
  const logFile = join(
    ctx.layout.logDir,
    logName === null ? `${pod.namespace}_${pod.name}_sandbox.log` : `${pod.namespace}_${pod.name}_${logName}.log`,
  );
  const child = spawnInPod({ netnsPath: pod.netnsPath, cgroupDir: scope }, argv, {
    env: Object.keys(env).length === 0 ? { ...ctx.baseEnv } : env,
    stdio: { logFile },
  });
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => {
      child.off('error', reject);
      child.on('error', () => undefined);
      if (child.pid === undefined) reject(new Error('spawned child has no pid'));
      else resolve(child.pid);
    });
  });
  const startTicks = processStartTicks(pid) ?? '';
  if (startTicks !== '')
    ctx.journal.record({ kind: 'process', pid, startTicks, role: `${pod.namespace}/${pod.name}/${role}` });
  return { pid, startTicks };
}

/** Whether the process still runs (same pid and start time, not a zombie). */
export function processAlive(pid: number, startTicks: string): boolean {
  if (processStartTicks(pid) !== startTicks) return false;
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Kills what is left of a container's scope and removes it (before a restart). */
export async function removeContainerScope(pod: RuntimePod, id: string, signal: AbortSignal): Promise<void> {
  const scope = join(pod.sliceDir, containerScopeName(id));
  await killCgroupTree(scope, signal);
  removeCgroupTree(scope);
}

/**
 * Stops the pod: SIGTERM to every process of its containers, then, after `graceMs` or once they are all
 * gone, SIGKILL to the whole slice; then removes the slice, the netns (its veth goes with it) and the
 * resolv.conf and its volumes' directory. Idempotent: objects already gone are fine.
 */
export async function destroyPod(
  ctx: RuntimeContext,
  pod: RuntimePod,
  graceMs: number,
  signal: AbortSignal,
): Promise<void> {
  const sandboxScope = pod.sandbox === null ? null : join(pod.sliceDir, containerScopeName(pod.sandbox.id));
  const appScopes = walkCgroups(pod.sliceDir).filter((d) => d !== pod.sliceDir && d !== sandboxScope);
  for (const dir of appScopes) for (const pid of cgroupProcs(dir)) signalPid(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && appScopes.some((d) => cgroupProcs(d).length > 0)) {
    await delay(50, undefined, { signal });
  }
  await killCgroupTree(pod.sliceDir, signal);
  removeCgroupTree(pod.sliceDir);
  if (pod.netnsName !== null) {
    try {
      await runHost('ip', ['netns', 'delete', pod.netnsName]);
    } catch (err) {
      if (!/No such file|Cannot remove namespace file/.test(String((err as Error).message))) throw err;
    }
    // Only this pod's directory: a prefix sweep would also take `web-2`'s along with `web`'s.
    rmSync(join(ETC_NETNS_DIR, pod.netnsName), { recursive: true, force: true });
  }
  for (const c of pod.containers) forgetExitCode(ctx, c.id);
  rmSync(podFilesDir(ctx.layout.stateDir, pod.uid), { recursive: true, force: true });
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if (!isErrno(err, 'ESRCH')) throw err;
  }
}

/** TCP ports in LISTEN state in the network namespace of `pid` (/proc/<pid>/net/tcp and tcp6). */
export function listeningPorts(pid: number): Set<number> {
  const out = new Set<number>();
  for (const file of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] !== '0A') continue; // st: 0A is TCP_LISTEN
      const port = Number.parseInt((f[1] ?? '').split(':')[1] ?? '', 16);
      if (Number.isInteger(port)) out.add(port);
    }
  }
  return out;
}
