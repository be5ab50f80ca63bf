// Enrollment reconciliation for the local cluster (the role istio-cni plays in Kubernetes): after every
// translation, every pod whose Workload speaks HBONE must be enrolled in its node's ztunnel (POST /pods
// {uid, netnsPath, cgroupPath}) and every other pod must not be (DELETE /pods/<uid>). One worker per node
// compares desired with what the ztunnel reports (GET /pods) and fixes the difference; it is idempotent and
// retries with backoff until it succeeds (the ztunnel may not be up yet, or may not have ACKed the config
// that names the workload). Desired state only ever moves forward: a newer one replaces an older one.
// A restarted controller seeds what is enrolled from its state file, so its first config already announces
// the enrolled pods as HBONE (not TCP until each ztunnel answered); the first pass corrects the seed.
// Every `resyncMs` (2 s) each converged node is checked again against its ztunnel's GET /pods, so a pod
// unenrolled behind the controller's back (DELETE /pods/<uid> on the ztunnel, a ztunnel that restarted
// without its state) is enrolled again within one period plus a pass (docs/operations.md, "Supervision").
// Every call goes over the ztunnel's admin socket (0600, root only): its TCP admin port serves no change.
import { setTimeout as delay } from 'node:timers/promises';
import type { Workload } from '../../mesh/types.ts';
import { adminSocketRequest } from '../../runtime/admin-socket.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { PodMigrationPhase } from '../migration-state.ts';

export interface PodPaths {
  readonly netnsPath: string;
  readonly cgroupPath: string;
}

/**
 * What the node ztunnel would be given to enroll a pod of the runtime, or undefined: never a pod created
 * with a sidecar, whatever the labels say now (its sidecar owns the pod's capture), unless `ferry migrate`
 * moves it (`phase` handover or ambient, migration-state.ts): in handover the sidecar's programs run first
 * and win (docs/redirect.md "Sidecar mode: nested attachment"), so the node's capture waits underneath.
 */
export function enrollmentPaths(
  pod: { readonly netnsPath: string; readonly cgroupDir: string; readonly sidecar?: boolean } | undefined,
  phase: PodMigrationPhase = pod?.sidecar === true ? 'sidecar' : 'ambient',
): PodPaths | undefined {
  if (pod === undefined || phase === 'sidecar') return undefined;
  return { netnsPath: pod.netnsPath, cgroupPath: pod.cgroupDir };
}

/** node name → uid → paths. */
export type DesiredEnrollments = ReadonlyMap<string, ReadonlyMap<string, PodPaths>>;

/** Pure: which pods must be enrolled where, from the published workloads and the runtime's pod paths. */
export function desiredEnrollments(
  workloads: readonly Workload[],
  pathsOf: (namespace: string, name: string) => PodPaths | undefined,
  nodes: readonly string[],
  native: ReadonlySet<string> = new Set(),
): Map<string, Map<string, PodPaths>> {
  const out = new Map(nodes.map((n) => [n, new Map<string, PodPaths>()]));
  for (const w of workloads) {
    if (w.protocol !== 'HBONE' || native.has(w.uid)) continue; // waypoints terminate HBONE themselves
    const paths = pathsOf(w.namespace, w.name);
    if (paths !== undefined) out.get(w.node)?.set(w.uid, paths); // else not created by the runtime
  }
  return out;
}

/**
 * Pure: the config the ztunnels get. A workload is announced as HBONE only once its pod is enrolled, so no
 * ztunnel tunnels to a pod whose node has not captured it yet (that would be refused: nothing listens on its
 * 15008); until then it stays TCP (reachable in plaintext, which the enrolled pod's PERMISSIVE inbound
 * accepts). Istio does the same: the pod is marked HBONE only after the CNI has set up its redirection.
 */
export function gateHbone<C extends { readonly workloads: readonly Workload[] }>(
  config: C,
  enrolled: ReadonlySet<string>,
  native: ReadonlySet<string> = new Set(),
): C {
  const ready = (w: Workload) => w.protocol !== 'HBONE' || enrolled.has(w.uid) || native.has(w.uid);
  if (config.workloads.every(ready)) return config;
  const workloads = config.workloads.map((w): Workload => (ready(w) ? w : { ...w, protocol: 'TCP' }));
  return { ...config, workloads };
}

/** Pure: `desired` plus the pods enrolled now (an unenrollment waits until no ztunnel tunnels to them). */
export function withEnrolled(
  desired: DesiredEnrollments,
  enrolledByNode: ReadonlyMap<string, ReadonlyMap<string, PodPaths>>,
): Map<string, Map<string, PodPaths>> {
  const out = new Map([...desired].map(([node, pods]) => [node, new Map(pods)]));
  for (const [node, pods] of enrolledByNode) {
    const into = out.get(node) ?? new Map<string, PodPaths>();
    for (const [uid, paths] of pods) if (!into.has(uid)) into.set(uid, paths);
    out.set(node, into);
  }
  return out;
}

const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 2_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** How often converged nodes are compared with their ztunnel's /pods again. */
export const ENROLLMENT_RESYNC_MS = 2_000;

export interface EnrollmentReconcilerOptions {
  /** Period of the re-check of converged nodes against their ztunnel (0: never). */
  readonly resyncMs?: number;
}

interface NodeWorker {
  readonly name: string;
  /** The ztunnel's admin socket. */
  readonly adminSocket: string;
  desired: ReadonlyMap<string, PodPaths>;
  generation: number;
  done: number;
  running: boolean;
  /** Pods the ztunnel reported enrolled after the last successful pass. */
  enrolled: ReadonlyMap<string, PodPaths>;
  lastError: string | null;
}

export class EnrollmentReconciler {
  readonly #workers: Map<string, NodeWorker>;
  readonly #log: Logger;
  readonly #closed = new AbortController();
  readonly #waiters = new Set<() => void>();

  readonly #onEnrolledChange: () => void;
  readonly #resync: NodeJS.Timeout | null;

  /**
   * `onEnrolledChange` runs when the set of enrolled pods changed, before convergence waiters wake;
   * `initialEnrolled` is what the ztunnels last reported to an earlier controller (node → uid → paths).
   */
  constructor(
    nodes: readonly { readonly name: string; readonly adminSocket: string }[],
    log: Logger,
    onEnrolledChange: () => void = () => undefined,
    initialEnrolled: ReadonlyMap<string, ReadonlyMap<string, PodPaths>> = new Map(),
    options: EnrollmentReconcilerOptions = {},
  ) {
    this.#log = log.child({ scope: 'enrollment' });
    this.#onEnrolledChange = onEnrolledChange;
    this.#workers = new Map(
      nodes.map((n) => [
        n.name,
        {
          name: n.name,
          adminSocket: n.adminSocket,
          desired: new Map(),
          generation: 0,
          done: 0,
          running: false,
          enrolled: new Map(initialEnrolled.get(n.name) ?? []),
          lastError: null,
        },
      ]),
    );
    const resyncMs = options.resyncMs ?? ENROLLMENT_RESYNC_MS;
    this.#resync =
      resyncMs > 0
        ? setInterval(() => {
            for (const w of this.#workers.values()) void this.#run(w, true);
          }, resyncMs).unref()
        : null;
  }

  /** Replaces what must be enrolled; nodes whose set changed reconcile at once. */
  setDesired(desired: DesiredEnrollments): void {
    for (const w of this.#workers.values()) {
      const next = desired.get(w.name) ?? new Map<string, PodPaths>();
      w.desired = next;
      w.generation++; // also re-checks unchanged nodes: a restarted ztunnel may have lost enrollments
      void this.#run(w);
    }
  }

  /** Whether every node's ztunnel matches the latest desired state. */
  get converged(): boolean {
    return [...this.#workers.values()].every((w) => w.done === w.generation);
  }

  /** Resolves once converged (or rejects with the signal's reason). */
  async whenConverged(signal: AbortSignal): Promise<void> {
    while (!this.converged) {
      signal.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          this.#waiters.delete(resolve);
          reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        this.#waiters.add(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });
    }
  }

  /** uids enrolled, as the ztunnels last reported. */
  enrolled(): Set<string> {
    return new Set([...this.#workers.values()].flatMap((w) => [...w.enrolled.keys()]));
  }

  /** node → uid → paths of the pods enrolled, as the ztunnels last reported. */
  enrolledByNode(): Map<string, ReadonlyMap<string, PodPaths>> {
    return new Map([...this.#workers.values()].map((w) => [w.name, w.enrolled]));
  }

  /** Per node: converged, last error. */
  status(): { node: string; converged: boolean; error: string | null }[] {
    return [...this.#workers.values()].map((w) => ({
      node: w.name,
      converged: w.done === w.generation,
      error: w.lastError,
    }));
  }

  close(): void {
    if (this.#resync !== null) clearInterval(this.#resync);
    this.#closed.abort(new Error('reconciler closed'));
  }

  /** `check`: one pass even when converged (the periodic re-check against the ztunnel's /pods). */
  async #run(w: NodeWorker, check = false): Promise<void> {
    if (w.running) return; // the running loop picks up the new generation
    w.running = true;
    let backoffMs = MIN_BACKOFF_MS;
    try {
      while ((w.done < w.generation || check) && !this.#closed.signal.aborted) {
        const generation = w.generation;
        try {
          const before = w.enrolled;
          w.enrolled = await this.#reconcileOnce(w);
          if (!sameKeys(before, w.enrolled)) this.#onEnrolledChange();
          w.done = generation;
          check = false;
          backoffMs = MIN_BACKOFF_MS;
          if (w.lastError !== null) this.#log.info({ node: w.name }, 'node enrollments reconciled after retries');
          w.lastError = null;
        } catch (err) {
          // The ztunnel is usually just not up yet: say so once per episode, not once per retry.
          if (w.lastError === null) {
            this.#log.info(
              { node: w.name, error: String((err as Error).message ?? err) },
              'enrollment pending; retrying',
            );
          }
          w.lastError = err instanceof Error ? err.message : String(err);
          // A periodic check of a converged node that failed (its ztunnel is down): the next period retries.
          if (check && w.done === w.generation) break;
          await delay(backoffMs, undefined, { signal: this.#closed.signal }).catch(() => undefined);
          backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
        }
        for (const wake of [...this.#waiters]) {
          this.#waiters.delete(wake);
          wake();
        }
      }
    } finally {
      w.running = false;
    }
  }

  async #reconcileOnce(w: NodeWorker): Promise<Map<string, PodPaths>> {
    const desired = w.desired;
    const listed = await this.#call(w, 'GET', '/pods');
    const actual = new Map<string, PodPaths>();
    const pods = isRecord(listed) && Array.isArray(listed.pods) ? listed.pods : [];
    for (const p of pods) {
      if (isRecord(p) && typeof p.uid === 'string') {
        actual.set(p.uid, { netnsPath: String(p.netnsPath), cgroupPath: String(p.cgroupPath) });
      }
    }
    const enrolled = new Map(actual);
    for (const [uid, paths] of desired) {
      if (actual.has(uid)) continue;
      await this.#call(w, 'POST', '/pods', { uid, netnsPath: paths.netnsPath, cgroupPath: paths.cgroupPath });
      enrolled.set(uid, paths);
      this.#log.info({ node: w.name, uid }, 'pod enrolled');
    }
    for (const uid of actual.keys()) {
      if (desired.has(uid)) continue;
      await this.#call(w, 'DELETE', `/pods/${encodeURIComponent(uid)}`);
      enrolled.delete(uid);
      this.#log.info({ node: w.name, uid }, 'pod unenrolled');
    }
    return enrolled;
  }

  async #call(w: NodeWorker, method: string, path: string, body?: unknown): Promise<unknown> {
    const signal = AbortSignal.any([this.#closed.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]);
    const res = await adminSocketRequest(w.adminSocket, method, path, { body, signal });
    const text = res.text;
    // DELETE of a pod that is already gone is success: the goal state holds.
    if (res.status === 404 && method === 'DELETE') return null;
    if (res.status < 200 || res.status > 299)
      throw new Error(`${method} ${path} on ${w.name}: HTTP ${res.status} ${text.trim().slice(0, 300)}`);
    return text === '' ? null : (JSON.parse(text) as unknown);
  }
}

function sameKeys(a: ReadonlyMap<string, unknown>, b: ReadonlyMap<string, unknown>): boolean {
  return a.size === b.size && [...a.keys()].every((k) => b.has(k));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
