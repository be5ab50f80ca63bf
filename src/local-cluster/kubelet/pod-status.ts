// What the kubelet writes to a pod's /status: phase, IPs, QoS class, conditions and one containerStatus
// per container, as the real kubelet shapes them (kubectl get/describe and `rollout status` read them).
// Pure: the runtime's view of the pod and the time come in; the previous status is used only to keep
// lastTransitionTime of conditions that did not change (so an unchanged pod needs no write).
import { isJson, type Json } from '../../kube/client.ts';
import type { QosClass } from './pod-qos.ts';

export type ContainerState =
  | { readonly kind: 'waiting'; readonly reason: string; readonly message?: string }
  | { readonly kind: 'running'; readonly startedAt: string }
  | {
      readonly kind: 'terminated';
      readonly exitCode: number;
      readonly startedAt: string;
      readonly finishedAt: string;
      /** Whether the restart policy brings it back (then the pod is still Running). */
      readonly willRestart: boolean;
    };

export interface ContainerView {
  readonly name: string;
  readonly image: string;
  /** `containerd://<id>` once started. */
  readonly containerId: string | null;
  readonly state: ContainerState;
  readonly lastTermination: {
    readonly exitCode: number;
    readonly startedAt: string;
    readonly finishedAt: string;
  } | null;
  readonly ready: boolean;
  readonly restartCount: number;
}

export interface PodView {
  readonly podIp: string | null;
  readonly hostIp: string;
  readonly qosClass: QosClass;
  readonly startTime: string;
  readonly sandboxReady: boolean;
  readonly containers: readonly ContainerView[];
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export function podPhase(containers: readonly ContainerView[]): PodPhase {
  if (containers.length === 0) return 'Pending';
  if (containers.some((c) => c.state.kind === 'running')) return 'Running';
  const done = containers.every((c) => c.state.kind === 'terminated' && !c.state.willRestart);
  if (done) {
    return containers.every((c) => c.state.kind === 'terminated' && c.state.exitCode === 0) ? 'Succeeded' : 'Failed';
  }
  // Between restarts (backoff): the pod has run, so it is Running, as the real kubelet reports it.
  return containers.every((c) => c.state.kind === 'terminated' || c.restartCount > 0) ? 'Running' : 'Pending';
}

/** The status to write for `view`; `previous` is the pod's current status (transition times kept). */
export function podStatus(view: PodView, previous: Json, now: string): Json {
  const ready = view.containers.length > 0 && view.containers.every((c) => c.ready);
  const before = new Map(
    (Array.isArray(previous.conditions) ? previous.conditions.filter(isJson) : []).map((c) => [c.type, c]),
  );
  const condition = (type: string, ok: boolean, reason?: string): Json => {
    const status = ok ? 'True' : 'False';
    const prev = before.get(type);
    const since =
      prev?.status === status && typeof prev.lastTransitionTime === 'string' ? prev.lastTransitionTime : now;
    return {
      type,
      status,
      lastProbeTime: null,
      lastTransitionTime: since,
      ...(ok || reason === undefined ? {} : { reason }),
    };
  };
  const phase = podPhase(view.containers);
  const ips = view.podIp === null ? {} : { podIP: view.podIp, podIPs: [{ ip: view.podIp }] };
  return {
    phase,
    conditions: [
      condition('PodReadyToStartContainers', view.sandboxReady),
      condition('Initialized', true),
      condition('Ready', ready, 'ContainersNotReady'),
      condition('ContainersReady', ready, 'ContainersNotReady'),
      condition('PodScheduled', true),
    ],
    hostIP: view.hostIp,
    hostIPs: [{ ip: view.hostIp }],
    ...ips,
    startTime: view.startTime,
    qosClass: view.qosClass,
    containerStatuses: view.containers.map(containerStatus),
  };
}

function containerStatus(c: ContainerView): Json {
  return {
    name: c.name,
    image: c.image,
    imageID: '',
    ...(c.containerId === null ? {} : { containerID: c.containerId }),
    ready: c.ready,
    started: c.state.kind === 'running',
    restartCount: c.restartCount,
    state: stateJson(c.state),
    lastState:
      c.lastTermination === null
        ? {}
        : {
            terminated: {
              exitCode: c.lastTermination.exitCode,
              reason: c.lastTermination.exitCode === 0 ? 'Completed' : 'Error',
              startedAt: c.lastTermination.startedAt,
              finishedAt: c.lastTermination.finishedAt,
            },
          },
  };
}

function stateJson(s: ContainerState): Json {
  switch (s.kind) {
    case 'waiting':
      return { waiting: { reason: s.reason, ...(s.message === undefined ? {} : { message: s.message }) } };
    case 'running':
      return { running: { startedAt: s.startedAt } };
    case 'terminated':
      return {
        terminated: {
          exitCode: s.exitCode,
          reason: s.exitCode === 0 ? 'Completed' : 'Error',
          startedAt: s.startedAt,
          finishedAt: s.finishedAt,
        },
      };
    default:
      return s satisfies never;
  }
}
