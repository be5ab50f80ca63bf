// Enrollment reconciliation for the local cluster (the role istio-cni plays in Kubernetes): after every
// translation, every pod whose Workload speaks HBONE must be enrolled in its node's ztunnel (POST /pods
// {uid, netnsPath, cgroupPath}) and every other pod must not be (DELETE /pods/<uid>). One worker per node
// compares desired with what the ztunnel reports (GET /pods) and fixes the difference; it is idempotent and
// retries with backoff until it succeeds (the ztunnel may not be up yet, or may not have ACKed the config
// that names the workload). Desired state only ever moves forward: a newer one replaces an older one.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../runtime/logger.ts';
import type { Workload } from '../../ztunnel/store/types.ts';

export interface PodPaths {
  readonly netnsPath: string;
  readonly cgroupPath: string;
}

/** node name → uid → paths. */
export type DesiredEnrollments = ReadonlyMap<string, ReadonlyMap<string, PodPaths>>;

/** Pure: which pods must be enrolled where, from the published workloads and the runtime's pod paths. */
export function desiredEnrollments(
  workloads: readonly Workload[],
  pathsOf: (namespace: string, name: string) => PodPaths | undefined,
  nodes: readonly string[],
): Map<string, Map<string, PodPaths>> {
  const out = new Map(nodes.map((n) => [n, new Map<string, PodPaths>()]));
  for (const w of workloads) {
    if (w.protocol !== 'HBONE') continue;
    const paths = pathsOf(w.namespace, w.name);
    if (paths !== undefined) out.get(w.node)?.set(w.uid, paths); // else not created by the runtime
  }
  return out;
}

const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 2_000;
const REQUEST_TIMEOUT_MS = 10_000;

interface NodeWorker {
  readonly name: string;
  readonly adminUrl: string;
  desired: ReadonlyMap<string, PodPaths>;
  generation: number;
  done: number;
  running: boolean;
  /** uids the ztunnel reported enrolled after the last successful pass. */
  enrolled: ReadonlySet<string>;
  lastError: string | null;
}

export class EnrollmentReconciler {
  readonly #workers: Map<string, NodeWorker>;
  readonly #log: Logger;
  readonly #closed = new AbortController();
  readonly #waiters = new Set<() => void>();

  constructor(nodes: readonly { readonly name: string; readonly admin: string }[], log: Logger) {
    this.#log = log.child({ scope: 'enrollment' });
    this.#workers = new Map(
      nodes.map((n) => [
        n.name,
        {
          name: n.name,
          adminUrl: `http://${n.admin}`,
          desired: new Map(),
          generation: 0,
          done: 0,
          running: false,
          enrolled: new Set(),
          lastError: null,
        },
      ]),
    );
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
    return new Set([...this.#workers.values()].flatMap((w) => [...w.enrolled]));
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
    this.#closed.abort(new Error('reconciler closed'));
  }

  async #run(w: NodeWorker): Promise<void> {
    if (w.running) return; // the running loop picks up the new generation
    w.running = true;
    let backoffMs = MIN_BACKOFF_MS;
    let reported = false;
    try {
      while (w.done < w.generation && !this.#closed.signal.aborted) {
        const generation = w.generation;
        try {
          w.enrolled = await this.#reconcileOnce(w);
          w.done = generation;
          w.lastError = null;
          backoffMs = MIN_BACKOFF_MS;
          if (reported) this.#log.info({ node: w.name }, 'node enrollments reconciled after retries');
          reported = false;
        } catch (err) {
          w.lastError = err instanceof Error ? err.message : String(err);
          // The ztunnel is usually just not up yet: say so once per episode, not once per retry.
          if (!reported) this.#log.info({ node: w.name, error: w.lastError }, 'enrollment pending; retrying');
          reported = true;
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

  async #reconcileOnce(w: NodeWorker): Promise<Set<string>> {
    const desired = w.desired;
    const listed = await this.#call(w, 'GET', '/pods');
    const actual = new Map<string, PodPaths>();
    const pods = isRecord(listed) && Array.isArray(listed.pods) ? listed.pods : [];
    for (const p of pods) {
      if (isRecord(p) && typeof p.uid === 'string') {
        actual.set(p.uid, { netnsPath: String(p.netnsPath), cgroupPath: String(p.cgroupPath) });
      }
    }
    const enrolled = new Set(actual.keys());
    for (const [uid, paths] of desired) {
      if (actual.has(uid)) continue;
      await this.#call(w, 'POST', '/pods', { uid, netnsPath: paths.netnsPath, cgroupPath: paths.cgroupPath });
      enrolled.add(uid);
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
    const res = await fetch(`${w.adminUrl}${path}`, {
      method,
      signal,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await res.text();
    // DELETE of a pod that is already gone is success: the goal state holds.
    if (res.status === 404 && method === 'DELETE') return null;
    if (!res.ok) throw new Error(`${method} ${path} on ${w.name}: HTTP ${res.status} ${text.trim().slice(0, 300)}`);
    return text === '' ? null : (JSON.parse(text) as unknown);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
