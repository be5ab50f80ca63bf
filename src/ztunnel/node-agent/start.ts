// Wires the node agent into a ztunnel (app.ts): the Kubernetes client from the config's kubeconfig choice,
// the in-pod enrollments as its target, mesh config changes as a retry trigger, and a readiness block
// lifted once the first list of Pods and Namespaces is in and reconciled.

import { readFileSync } from 'node:fs';
import { KubeClient, loadKubeConfig } from '../../kube/client.ts';
import type { MeshStore } from '../../mesh/mesh-store.ts';
import { cgroup2MountPoint } from '../../redirect-bpf/index.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { ReadinessTracker } from '../../runtime/readiness.ts';
import type { EnrollFrom } from '../config.ts';
import type { ZtunnelMetrics } from '../metrics.ts';
import { type EnrollmentTarget, NodeAgent } from './agent.ts';
import { exemptOwnCgroups, type GuardMaps, ownCgroupPath } from './classify.ts';
import { cgroupV1Mounts } from './locate.ts';

export interface NodeAgentWiring {
  readonly node: string;
  readonly clusterId: string;
  readonly enrollFrom: Extract<EnrollFrom, { kind: 'kubernetes' }>;
  readonly cgroupRoot: string;
  readonly target: EnrollmentTarget;
  /** The fail-closed guard's maps (the BPF redirector). */
  readonly guard: GuardMaps;
  readonly store: MeshStore;
  readonly metrics: ZtunnelMetrics;
  readonly readiness: ReadinessTracker;
  readonly log: Logger;
  readonly signal: AbortSignal;
}

/** Starts the agent in the background (the API may not answer yet: the informers retry). Throws FERRY_KUBE_CONFIG. */
export function startNodeAgent(w: NodeAgentWiring): { stop(): void } {
  const kubeConfig = loadKubeConfig({
    kubeconfigPath: w.enrollFrom.kubeconfigPath,
    kubeconfigEnv: w.enrollFrom.kubeconfigEnv,
    inCluster: w.enrollFrom.inCluster,
  });
  const client = new KubeClient(kubeConfig);
  const agent = new NodeAgent({
    node: w.node,
    clusterId: w.clusterId,
    kubeConfig,
    client,
    locate: { cgroupRoot: w.cgroupRoot, hostProc: w.enrollFrom.hostProc, v1Roots: v1Roots() },
    target: w.target,
    guard: { maps: w.guard, ownCgroupPath: ownCgroupPath(cgroup2Mount()), ownPodUid: w.enrollFrom.podUid },
    log: w.log,
    metrics: w.metrics,
    mesh: { protocolOf: (uid) => w.store.view.workloadByUid(uid)?.protocol },
  });
  // A draining ztunnel changes no enrollment: the pinned datapath keeps the pods for the next ztunnel.
  w.signal.addEventListener('abort', () => agent.stop(), { once: true });
  const block = w.readiness.block('node agent');
  const subscription = w.store.onChange(() => agent.meshChanged());
  agent.start(w.signal).then(
    () => block.unblock(),
    (err: unknown) => {
      if (!w.signal.aborted) w.log.error({ error: String(err) }, 'node agent failed to start');
    },
  );
  w.log.info({ node: w.node, cgroupRoot: w.cgroupRoot, hostProc: w.enrollFrom.hostProc }, 'node agent started');
  return {
    stop() {
      subscription[Symbol.dispose]();
      agent.stop();
      client.close();
    },
  };
}

/**
 * Exempts this ztunnel's own cgroup and pod from a fail-closed guard a previous agent left pinned, before
 * the ztunnel's first connect (xDS, CA). The agent arms the guard itself later (startNodeAgent).
 */
export function exemptOwnPod(w: {
  readonly cgroupRoot: string;
  readonly podUid: string | null;
  readonly guard: GuardMaps;
  readonly log: Logger;
}): void {
  try {
    exemptOwnCgroups({
      cgroupRoot: w.cgroupRoot,
      ownCgroupPath: ownCgroupPath(cgroup2Mount()),
      ownPodUid: w.podUid,
      guard: w.guard,
    });
  } catch (err) {
    w.log.warn({ error: (err as Error).message }, 'own pod not exempted from the fail-closed guard');
  }
}

function cgroup2Mount(): string | null {
  try {
    return cgroup2MountPoint();
  } catch {
    return null;
  }
}

function v1Roots(): string[] {
  try {
    return cgroupV1Mounts(readFileSync('/proc/self/mounts', 'utf8'));
  } catch {
    return [];
  }
}
