// One pass over a running pod's containers: notices exits (pid gone; exit code from the wrapper's file),
// restarts them per restartPolicy with CrashLoopBackOff (restart-policy.ts), and reports each one's state
// and readiness (its ports listening in the pod's netns). The restart history lives in memory: after a
// kubelet restart the persisted restartCount stays, only the backoff starts over.
import { NEW_RESTART_STATE, onExit, onRestart, onRunning, type RestartState } from '../restart-policy.ts';
import {
  listeningPorts,
  processAlive,
  type RuntimeContainer,
  type RuntimeContext,
  type RuntimePod,
  readExitCode,
  removeContainerScope,
  startPodContainer,
} from './pod-runtime.ts';
import type { KubeletContainer, RestartPolicy } from './pod-spec.ts';
import type { ContainerView } from './pod-status.ts';

/** Exit code reported when the wrapper could not write one (killed by a signal): 128 + SIGKILL. */
const KILLED_EXIT_CODE = 137;

export interface ContainerHistory {
  restart: RestartState;
  /** When a restart is due (in backoff), or null. */
  restartAtMs: number | null;
  exited: { exitCode: number; startedAt: string; finishedAt: string } | null;
  /** Exited for good (the policy does not restart it). */
  final: boolean;
}

export interface SyncResult {
  readonly pod: RuntimePod;
  readonly views: readonly ContainerView[];
  readonly changed: boolean;
}

export function shouldRestart(policy: RestartPolicy, exitCode: number): boolean {
  return policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
}

export async function syncContainers(
  ctx: RuntimeContext,
  pod: RuntimePod,
  specs: readonly KubeletContainer[],
  policy: RestartPolicy,
  history: Map<string, ContainerHistory>,
  now: { ms: number; iso: string },
  signal: AbortSignal,
): Promise<SyncResult> {
  let changed = false;
  const next: RuntimeContainer[] = [];
  const views: ContainerView[] = [];
  const listening = pod.sandbox === null ? new Set<number>() : listeningPorts(pod.sandbox.pid);
  for (const c of pod.containers) {
    const key = `${pod.uid}/${c.name}`;
    const h = history.get(key) ?? { restart: NEW_RESTART_STATE, restartAtMs: null, exited: null, final: false };
    history.set(key, h);
    const spec = specs.find((s) => s.name === c.name);
    let current = c;
    if (h.restartAtMs === null && !h.final && !processAlive(c.pid, c.startTicks)) {
      const exitCode = readExitCode(ctx, c.id) ?? KILLED_EXIT_CODE;
      h.exited = { exitCode, startedAt: c.startedAt, finishedAt: now.iso };
      changed = true;
      if (spec !== undefined && shouldRestart(policy, exitCode)) {
        const exit = onExit(h.restart, now.ms);
        h.restart = exit.state;
        h.restartAtMs = exit.restartAtMs;
      } else {
        h.final = true;
      }
    }
    if (h.restartAtMs !== null && h.restartAtMs <= now.ms && spec !== undefined) {
      await removeContainerScope(pod, c.id, signal);
      const started = await startPodContainer(ctx, pod, spec);
      current = {
        ...c,
        ...started,
        startedAt: now.iso,
        restartCount: c.restartCount + 1,
        lastTermination: h.exited,
      };
      h.restart = onRestart(h.restart, now.ms);
      h.restartAtMs = null;
      changed = true;
    } else if (h.restartAtMs === null && !h.final) {
      h.restart = onRunning(h.restart, now.ms);
    }
    next.push(current);
    views.push(viewOf(current, h, spec, listening));
  }
  return { pod: { ...pod, containers: next }, views, changed };
}

function viewOf(
  c: RuntimeContainer,
  h: ContainerHistory,
  spec: KubeletContainer | undefined,
  listening: ReadonlySet<number>,
): ContainerView {
  const base = {
    name: c.name,
    image: c.image,
    containerId: `containerd://${c.id}`,
    restartCount: c.restartCount,
    lastTermination: c.lastTermination,
  };
  if (h.final && h.exited !== null) {
    return { ...base, ready: false, state: { kind: 'terminated', ...h.exited, willRestart: false } };
  }
  if (h.restartAtMs !== null) {
    return {
      ...base,
      lastTermination: h.exited,
      ready: false,
      state: { kind: 'waiting', reason: 'CrashLoopBackOff', message: `back-off restarting failed container ${c.name}` },
    };
  }
  const ports = spec?.readinessPorts ?? [];
  return {
    ...base,
    ready: ports.every((p) => listening.has(p)),
    state: { kind: 'running', startedAt: c.startedAt },
  };
}
