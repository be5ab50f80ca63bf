// The ztunnel's node agent (`--enroll-from=kubernetes`; the role istio-cni's node agent plays for Istio):
// informers on this node's Pods (fieldSelector spec.nodeName) and on Namespaces; after both are listed,
// every change reconciles the ztunnel's enrollments through the same calls the admin `POST /pods` and
// `DELETE /pods/<uid>` make, so the BPF side is the one the admin path uses. A pod is enrolled when
// decideEnrollment says so and it can be located on the host (locate.ts); a pod that cannot be located
// yet (no cgroup, no process) or whose enrollment fails is logged, counted and retried with backoff, and
// never stops the agent. Until the first full list, nothing is unenrolled: after a restart the pods
// restored from the state file and the pinned maps keep being captured without a gap (docs/redirect.md).
// Enrollment is hitless with the controller through the pod's redirection annotation (redirection.ts):
// `enabled` after capture; a pod the ambient rule lets go is annotated `disabled` and stays captured until
// the mesh shows it as TCP (plus a grace). Lifecycle ends (deleted, terminating, terminal) unenroll at once.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Json, KubeClient } from '../../kube/client.ts';
import { KubeInformer } from '../../kube/informer.ts';
import { podWorkloadUid, REDIRECTION_ANNOTATION, type RedirectionState } from '../../mesh/ambient-enrollment.ts';
import type { TunnelProtocol } from '../../mesh/types.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { EnrolledPod, PodEnrollRequest } from '../in-pod.ts';
import type { ZtunnelMetrics } from '../metrics.ts';
import { candidatePath, podCgroupCandidates } from './cgroup-paths.ts';
import { type DesiredClass, type GuardMaps, PodClassifier } from './classify.ts';
import { decideEnrollment, type EnrollmentDecision } from './decision.ts';
import { type LocateOptions, locatePod } from './locate.ts';
import { type NodePod, namespaceLabels, parseNodePod, podKey } from './pod.ts';
import { patchRedirection, planRelease, type ReleaseProgress } from './redirection.ts';

/** What the agent drives: the ztunnel's in-pod enrollments (InPodManager behind app.ts). */
export interface EnrollmentTarget {
  enroll(request: PodEnrollRequest): Promise<EnrolledPod>;
  unenroll(uid: string): Promise<boolean>;
  list(): readonly EnrolledPod[];
  /** Unpins pinned pods (left by an earlier ztunnel) that are neither enrolled nor under these cgroups. */
  unpinStale(keepCgroupPaths: readonly string[]): Promise<unknown>;
}

export interface NodeAgentOptions {
  readonly node: string;
  /** The mesh's cluster id: a pod's workload uid is `<clusterId>//Pod/<ns>/<name>`. */
  readonly clusterId: string;
  readonly kubeConfig: KubeConfig;
  readonly client: KubeClient;
  readonly locate: LocateOptions;
  readonly target: EnrollmentTarget;
  readonly log: Logger;
  readonly metrics?: ZtunnelMetrics;
  /** The fail-closed guard (classify.ts): armed at start, kept in step with the API on every pass. */
  readonly guard?: {
    readonly maps: GuardMaps;
    readonly ownCgroupPath: string | null;
    readonly ownPodUid: string | null;
  };
  /** How this node's ztunnel sees a workload (its xDS mesh view): a release waits for TCP there. */
  readonly mesh: { protocolOf(uid: string): TunnelProtocol | undefined };
  /** Now, in ms (tests inject a clock). */
  readonly now?: () => number;
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 10_000;

interface Retry {
  attempts: number;
  nextAtMs: number;
  lastCode: string;
}

/** Reasons of the ambient rule: the pod lives on, so peers must stop tunnelling before it is let go. */
const RELEASED_BY_RULE: ReadonlySet<string> = new Set(['not-labelled', 'pod-opted-out', 'sidecar', 'host-network']);

interface Counts {
  enrolled: number;
  unenrolled: number;
  failures: Map<string, number>;
}

export class NodeAgent {
  readonly #opts: NodeAgentOptions;
  readonly #log: Logger;
  readonly #pods = new Map<string, NodePod>();
  readonly #namespaces = new Map<string, ReadonlyMap<string, string>>();
  readonly #retries = new Map<string, Retry>();
  /** Pods being let go (by workload uid): annotated disabled, waiting for the mesh to show them TCP. */
  readonly #releases = new Map<string, ReleaseProgress & { wakeAtMs: number }>();
  /** Annotation values patched but not seen back from the API yet (no second patch meanwhile). */
  readonly #annotating = new Map<string, RedirectionState>();
  /** Failed annotation patches: retried at this time. */
  readonly #annotateRetryAtMs = new Map<string, number>();
  readonly #counts: Counts = { enrolled: 0, unenrolled: 0, failures: new Map() };
  readonly #informers: KubeInformer[];
  readonly #classifier: PodClassifier | null;
  #synced = false;
  /** Pins of an earlier ztunnel are released after the first pass that follows the first full list. */
  #pinsReconciled = false;
  #stopped = false;
  #running: Promise<void> | null = null;
  #dirty = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(opts: NodeAgentOptions) {
    this.#opts = opts;
    this.#log = opts.log.child({ scope: 'node-agent' });
    this.#classifier =
      opts.guard === undefined
        ? null
        : new PodClassifier({
            cgroupRoot: opts.locate.cgroupRoot,
            ownCgroupPath: opts.guard.ownCgroupPath,
            ownPodUid: opts.guard.ownPodUid,
            guard: opts.guard.maps,
            log: this.#log,
          });
    const informer = (path: string, upsert: (o: Json) => void, remove: (o: Json) => void) =>
      new KubeInformer({
        config: opts.kubeConfig,
        client: opts.client,
        path,
        log: this.#log,
        handlers: {
          upsert: (o) => {
            upsert(o);
            this.#schedule();
          },
          remove: (o) => {
            remove(o);
            this.#schedule();
          },
        },
      });
    const selector = encodeURIComponent(`spec.nodeName=${opts.node}`);
    this.#informers = [
      informer(
        '/api/v1/namespaces',
        (o) => {
          const ns = namespaceLabels(o);
          if (ns !== null) this.#namespaces.set(ns.name, ns.labels);
        },
        (o) => {
          const ns = namespaceLabels(o);
          if (ns !== null) this.#namespaces.delete(ns.name);
        },
      ),
      informer(
        `/api/v1/pods?fieldSelector=${selector}`,
        (o) => {
          const pod = parseNodePod(o);
          if (pod === null) return;
          this.#pods.set(podKey(pod), pod);
          // The kubelet reports progress (a container started): a pod waiting to be located is tried now.
          const retry = this.#retries.get(podWorkloadUid(opts.clusterId, pod.namespace, pod.name));
          if (retry !== undefined) retry.nextAtMs = 0;
        },
        (o) => {
          const pod = parseNodePod(o);
          if (pod !== null) this.#pods.delete(podKey(pod));
        },
      ),
    ];
    opts.metrics?.addCollector({
      name: 'ferry_node_agent_enrollments_total',
      help: 'Pods the node agent enrolled (action=enroll) or unenrolled (action=unenroll)',
      kind: 'counter',
      labelNames: ['action'],
      collect: () => [
        { labels: { action: 'enroll' }, value: this.#counts.enrolled },
        { labels: { action: 'unenroll' }, value: this.#counts.unenrolled },
      ],
    });
    opts.metrics?.addCollector({
      name: 'ferry_node_agent_enroll_failures_total',
      help: 'Failed attempts to locate or enroll a pod that should be captured, by error code (retried)',
      kind: 'counter',
      labelNames: ['code'],
      collect: () => [...this.#counts.failures].map(([code, value]) => ({ labels: { code }, value })),
    });
  }

  /** Starts the informers; resolves once Namespaces and Pods are listed and the first pass ran. */
  async start(signal?: AbortSignal): Promise<void> {
    // Before the first list: from here on a pod the agent has not looked at cannot connect at all.
    this.#classifier?.arm();
    await Promise.all(this.#informers.map((i) => i.start(signal)));
    this.#synced = true;
    this.#log.info({ pods: this.#pods.size, namespaces: this.#namespaces.size }, 'node agent synced');
    this.#schedule();
    await this.#running;
  }

  /** The mesh config changed: pods waiting for their workload are tried again now. */
  meshChanged(): void {
    // A release waits for the mesh to show its pod as TCP; a retry for the mesh to name its pod.
    if (this.#retries.size === 0 && this.#releases.size === 0) return;
    for (const r of this.#retries.values()) r.nextAtMs = 0;
    this.#schedule();
  }

  /** Resolves when no pass is running or pending (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#running !== null) await this.#running;
  }

  stop(): void {
    this.#stopped = true;
    for (const i of this.#informers) i.stop();
    this.#classifier?.stop();
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #schedule(): void {
    if (!this.#synced || this.#stopped) return;
    if (this.#running !== null) {
      this.#dirty = true;
      return;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = null;
    });
  }

  async #loop(): Promise<void> {
    do {
      this.#dirty = false;
      try {
        await this.#reconcile();
      } catch (err) {
        // A bug, not an outcome: say so loudly and keep the agent alive for the next event.
        this.#log.error({ error: String((err as Error)?.stack ?? err) }, 'node agent pass failed');
      }
    } while (this.#dirty && !this.#stopped);
    this.#armRetryTimer();
  }

  /** One pass: unenroll what must not be captured, then enroll what must be (each pod on its own). */
  async #reconcile(): Promise<void> {
    const desired = new Map<string, { pod: NodePod; decision: EnrollmentDecision }>();
    const byUid = new Map<string, { pod: NodePod; decision: EnrollmentDecision }>();
    const classes = new Map<string, DesiredClass>();
    for (const pod of this.#pods.values()) {
      const labels = this.#namespaces.get(pod.namespace) ?? new Map();
      const decision = decideEnrollment(pod, this.#opts.node, labels, this.#opts.guard?.ownPodUid ?? null);
      const uid = podWorkloadUid(this.#opts.clusterId, pod.namespace, pod.name);
      byUid.set(uid, { pod, decision });
      if (decision.enroll) desired.set(uid, { pod, decision });
      classes.set(pod.uid, { pod, cls: decision.enroll ? 'ambient' : 'exempt' });
    }
    // Classified before any (un)enrollment: a pod let go is exempt before its capture ends, and a pod to
    // be captured is refused (never plaintext) until its enrollment below succeeds.
    this.#classifier?.update(classes, true);
    const enrolled = new Map(this.#opts.target.list().map((p) => [p.uid, p]));
    for (const [uid, current] of enrolled) {
      if (this.#stopped) return;
      const want = desired.get(uid);
      if (want !== undefined && this.#isSamePod(want.pod, current)) continue;
      const seen = byUid.get(uid);
      const reason = want !== undefined ? 'pod-replaced' : (seen?.decision.reason ?? 'pod-gone');
      if (seen !== undefined && want === undefined && RELEASED_BY_RULE.has(reason)) {
        if (!(await this.#released(uid, seen.pod))) continue; // still captured: peers may still tunnel to it
      }
      await this.#unenroll(uid, seen?.pod, reason);
      enrolled.delete(uid);
    }
    for (const uid of this.#releases.keys()) if (!enrolled.has(uid) || desired.has(uid)) this.#releases.delete(uid);
    for (const uid of this.#retries.keys()) if (!desired.has(uid)) this.#retries.delete(uid);
    for (const uid of this.#annotating.keys()) if (!byUid.has(uid)) this.#annotating.delete(uid);
    for (const uid of this.#annotateRetryAtMs.keys()) if (!byUid.has(uid)) this.#annotateRetryAtMs.delete(uid);
    const now = this.#now();
    for (const [uid, { pod, decision }] of desired) {
      if (this.#stopped) return;
      if (enrolled.has(uid)) {
        await this.#annotate(uid, pod, 'enabled'); // relabelled while being let go, or an earlier patch failed
        continue;
      }
      const retry = this.#retries.get(uid);
      if (retry !== undefined && retry.nextAtMs > now) continue;
      await this.#enroll(uid, pod, decision.reason);
    }
    if (!this.#pinsReconciled && !this.#stopped) {
      // A pod that must be captured but is not enrolled yet keeps its pins: refused, never plaintext.
      const root = this.#opts.locate.cgroupRoot;
      const pending = [...desired.values()].flatMap(({ pod }) =>
        podCgroupCandidates(pod.uid, null).map((c) => candidatePath(root, c)),
      );
      await this.#opts.target.unpinStale(pending);
      this.#pinsReconciled = true;
    }
  }

  /** The enrolled cgroup is one of this pod's (a pod recreated under the same name has a new uid). */
  #isSamePod(pod: NodePod, current: EnrolledPod): boolean {
    const root = this.#opts.locate.cgroupRoot;
    return podCgroupCandidates(pod.uid, null).some((c) => candidatePath(root, c) === current.cgroupPath);
  }

  async #enroll(uid: string, pod: NodePod, reason: string): Promise<void> {
    const fields = { namespace: pod.namespace, pod: pod.name, podUid: pod.uid, uid };
    try {
      const where = await locatePod(pod, this.#opts.locate);
      await this.#opts.target.enroll({ uid, netnsPath: where.netnsPath, cgroupPath: where.cgroupPath });
      this.#retries.delete(uid);
      this.#counts.enrolled++;
      this.#log.info(
        { ...fields, reason, cgroup: where.cgroupPath, driver: where.driver, pid: where.pid },
        'node agent: pod enrolled',
      );
      await this.#annotate(uid, pod, 'enabled'); // now peers may tunnel to it: the controller announces HBONE
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const code = e.code ?? 'unexpected';
      this.#counts.failures.set(code, (this.#counts.failures.get(code) ?? 0) + 1);
      const previous = this.#retries.get(uid);
      const attempts = (previous?.attempts ?? 0) + 1;
      const delayMs = Math.min(RETRY_MIN_MS * 2 ** (attempts - 1), RETRY_MAX_MS);
      this.#retries.set(uid, { attempts, nextAtMs: this.#now() + delayMs, lastCode: code });
      // Once per pod and error (a pod starting up fails the same way a few times): warn, then debug.
      const level = previous?.lastCode === code ? 'debug' : 'warn';
      this.#log[level](
        { ...fields, code, error: e.message, attempts, retryInMs: delayMs },
        'node agent: pod not enrolled yet',
      );
    }
  }

  /** One step of letting a still-existing pod go (redirection.ts); true once it may be unenrolled. */
  async #released(uid: string, pod: NodePod): Promise<boolean> {
    const now = this.#now();
    const current = this.#releases.get(uid);
    if (current === undefined) {
      this.#log.info({ namespace: pod.namespace, pod: pod.name, uid }, 'node agent: releasing pod');
    }
    const step = planRelease({
      annotation: this.#annotating.get(uid) ?? pod.annotations.get(REDIRECTION_ANNOTATION),
      meshProtocol: this.#opts.mesh.protocolOf(uid),
      progress: current ?? { startedAtMs: now, tcpSinceMs: null },
      nowMs: now,
    });
    switch (step.kind) {
      case 'annotate-disabled':
        this.#releases.set(uid, { startedAtMs: current?.startedAtMs ?? now, tcpSinceMs: null, wakeAtMs: Infinity });
        await this.#annotate(uid, pod, 'disabled');
        return false;
      case 'await-mesh':
      case 'await-grace':
        this.#releases.set(uid, { ...step.progress, wakeAtMs: step.untilMs });
        return false;
      case 'unenroll':
        if (step.why === 'timed-out') {
          this.#log.warn(
            { namespace: pod.namespace, pod: pod.name, uid },
            'node agent: mesh never showed the pod as TCP',
          );
        }
        this.#releases.delete(uid);
        return true;
      default:
        return step satisfies never;
    }
  }

  /** Sets the pod's redirection annotation unless the API already has it (or our patch is on its way). */
  async #annotate(uid: string, pod: NodePod, state: RedirectionState): Promise<void> {
    const observed = pod.annotations.get(REDIRECTION_ANNOTATION);
    if (this.#annotating.get(uid) === observed) this.#annotating.delete(uid); // the API shows our patch
    if (observed === state || this.#annotating.get(uid) === state) return;
    if (state === 'disabled' && observed === undefined) return; // never annotated: nothing announces it
    const retryAt = this.#annotateRetryAtMs.get(uid);
    if (retryAt !== undefined && retryAt > this.#now()) return;
    try {
      await patchRedirection(this.#opts.client, pod, state);
      this.#annotating.set(uid, state);
      this.#annotateRetryAtMs.delete(uid);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      this.#counts.failures.set('annotate', (this.#counts.failures.get('annotate') ?? 0) + 1);
      this.#annotateRetryAtMs.set(uid, this.#now() + RETRY_MIN_MS * 10);
      this.#log.warn(
        { namespace: pod.namespace, pod: pod.name, uid, state, code: e.code, error: e.message },
        'node agent: could not annotate the pod (retried)',
      );
    }
  }

  async #unenroll(uid: string, pod: NodePod | undefined, reason: string): Promise<void> {
    try {
      await this.#opts.target.unenroll(uid);
      this.#counts.unenrolled++;
      this.#log.info(
        { namespace: pod?.namespace, pod: pod?.name, podUid: pod?.uid, uid, reason },
        'node agent: pod unenrolled',
      );
    } catch (err) {
      this.#log.error({ uid, reason, error: (err as Error).message }, 'node agent: unenroll failed');
    }
  }

  #armRetryTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const wakeUps = [
      ...[...this.#retries.values()].map((r) => r.nextAtMs),
      ...[...this.#releases.values()].map((r) => r.wakeAtMs),
      ...this.#annotateRetryAtMs.values(),
    ].filter((t) => Number.isFinite(t));
    if (this.#stopped || wakeUps.length === 0) return;
    const next = Math.min(...wakeUps);
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        this.#schedule();
      },
      Math.max(0, next - this.#now()),
    );
    this.#timer.unref();
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }
}
