// The parts of a Pod's JSON the kubelet acts on, read once into plain values: containers (image → command
// through images.ts; env with fieldRefs and `$(VAR)` through pod-env.ts; volume mount paths rewritten to the
// pod's host directories through pod-volumes.ts; ports), the ports whose listening socket makes a container
// ready, the restart policy, hostNetwork, and the grace period. Pure; unknown or malformed fields read as
// absent.
import { isJson, type Json, SERVICE_ACCOUNT_DIR } from '../../kube/client.ts';
import { resolveContainerCommand } from '../images.ts';
import { expandVars, type PodFacts, resolveContainerEnv } from './pod-env.ts';
import type { ContainerLaunchSpec } from './pod-runtime.ts';
import { containerMounts, mountTable, podVolumes, rewriteMountPaths } from './pod-volumes.ts';

/** Where the pod runs: its downward-API facts, and the state dir its volumes live under. */
export interface PodPlacementFacts extends PodFacts {
  readonly stateDir: string;
}

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';

export interface PodIdentity {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
}

export interface KubeletContainer extends ContainerLaunchSpec {
  /** TCP ports that must be listening in the pod's netns before the container is Ready. */
  readonly readinessPorts: readonly number[];
}

export type ContainersResult =
  | { readonly ok: true; readonly containers: readonly KubeletContainer[] }
  | { readonly ok: false; readonly container: string; readonly message: string };

export function podIdentity(pod: Json): PodIdentity | null {
  const meta = isJson(pod.metadata) ? pod.metadata : {};
  const { uid, namespace, name } = meta;
  if (typeof uid !== 'string' || typeof namespace !== 'string' || typeof name !== 'string') return null;
  return { uid, namespace, name };
}

export function specOf(pod: Json): Json {
  return isJson(pod.spec) ? pod.spec : {};
}

export function isTerminating(pod: Json): boolean {
  return isJson(pod.metadata) && typeof pod.metadata.deletionTimestamp === 'string';
}

export function restartPolicyOf(pod: Json): RestartPolicy {
  const p = specOf(pod).restartPolicy;
  return p === 'OnFailure' || p === 'Never' ? p : 'Always';
}

export function usesHostNetwork(pod: Json): boolean {
  return specOf(pod).hostNetwork === true;
}

/** Seconds the pod's containers get between SIGTERM and SIGKILL when it is deleted. */
export function graceSecondsOf(pod: Json): number {
  const meta = isJson(pod.metadata) ? pod.metadata : {};
  const marked = meta.deletionGracePeriodSeconds;
  if (typeof marked === 'number' && marked >= 0) return marked;
  const own = specOf(pod).terminationGracePeriodSeconds;
  return typeof own === 'number' && own >= 0 ? own : 30;
}

/** The pod's containers with their commands, or the first container that cannot run (no stand-in image). */
export function podContainers(
  pod: Json,
  ferryArgv: readonly [string, ...string[]],
  where: PodPlacementFacts,
): ContainersResult {
  const volumes = podVolumes(pod);
  if (!volumes.ok) return { ok: false, container: '', message: volumes.message };
  const uid = podIdentity(pod)?.uid ?? '';
  const out: KubeletContainer[] = [];
  for (const c of (Array.isArray(specOf(pod).containers) ? (specOf(pod).containers as unknown[]) : []).filter(isJson)) {
    const name = typeof c.name === 'string' ? c.name : '';
    const fail = (message: string): ContainersResult => ({ ok: false, container: name, message });
    const env = resolveContainerEnv(c, pod, where);
    if (!env.ok) return fail(env.message);
    const mounts = containerMounts(c, volumes.volumes);
    if (!mounts.ok) return fail(mounts.message);
    const table = mountTable(where.stateDir, uid, mounts.mounts, volumes.volumes);
    // As the kubelet: $(VAR) from the container's env first; then the in-pod paths become host paths.
    const inPod = (list: string[] | undefined) => list?.map((a) => rewriteMountPaths(expandVars(a, env.env), table));
    const ports = containerPorts(c);
    const command = inPod(stringList(c.command));
    const args = inPod(stringList(c.args));
    const spec = {
      name,
      ...(typeof c.image === 'string' ? { image: c.image } : {}),
      ...(command === undefined ? {} : { command }),
      ...(args === undefined ? {} : { args }),
      ports,
    };
    let argv: readonly [string, ...string[]];
    try {
      argv = resolveContainerCommand(spec, ferryArgv).argv;
    } catch (err) {
      return fail((err as Error).message);
    }
    out.push({
      name,
      image: typeof c.image === 'string' ? c.image : '',
      argv,
      env: {
        ...Object.fromEntries(Object.entries(env.env).map(([k, v]) => [k, rewriteMountPaths(v, table)])),
        ...inClusterEnv(table),
      },
      readinessPorts: [...new Set([...ports, ...probePorts(c)])],
    });
  }
  return { ok: true, containers: out };
}

// Where this container finds its in-cluster files (src/kube/client.ts reads FERRY_SERVICEACCOUNT_DIR),
// when the ServiceAccount volume is mounted at the standard path.
function inClusterEnv(table: readonly { mountPath: string; hostPath: string }[]): Record<string, string> {
  const hit = table.find((t) => t.mountPath === SERVICE_ACCOUNT_DIR);
  return hit === undefined ? {} : { FERRY_SERVICEACCOUNT_DIR: hit.hostPath };
}

function stringList(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
}

function containerPorts(c: Json): number[] {
  const ports = Array.isArray(c.ports) ? c.ports.filter(isJson) : [];
  return ports
    .filter((p) => p.protocol === undefined || p.protocol === 'TCP')
    .map((p) => p.containerPort)
    .filter((p): p is number => typeof p === 'number' && Number.isInteger(p) && p > 0 && p < 65536);
}

// A readinessProbe's tcpSocket/httpGet port counts as "listening = ready" (the probe itself is not run).
function probePorts(c: Json): number[] {
  const probe = isJson(c.readinessProbe) ? c.readinessProbe : {};
  const out: number[] = [];
  for (const key of ['tcpSocket', 'httpGet', 'grpc']) {
    const action = probe[key];
    if (isJson(action) && typeof action.port === 'number') out.push(action.port);
  }
  return out;
}
