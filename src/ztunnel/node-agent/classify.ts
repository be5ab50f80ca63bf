// The node agent's half of the fail-closed guard (docs/redirect.md, "Fail-closed capture for new pods").
// While the guard root is set, the datapath refuses connects from any cgroup under the pod root that is
// neither enrolled nor classified `exempt`; this module keeps the `classified` map in step with the API:
// `ambient` for a pod to be enrolled, `exempt` for any other pod, no entry for a pod that is gone. A new
// pod's cgroup is classified the moment it appears (inotify on the pod-root and QoS-level directories),
// and on every pass; a short poll covers pods whose cgroup is not found yet (a directory the watch missed).
// Invariant: the agent's own cgroup is exempt before the guard is armed, so it can always reach the API.
import { type FSWatcher, readFileSync, statSync, watch } from 'node:fs';
import { basename, join } from 'node:path';
import type { PodClass } from '../../redirect-bpf/index.ts';
import type { Logger } from '../../runtime/logger.ts';
import { candidatePath, isInside, podCgroupCandidates, podParentDirs, podUidFromCgroupName } from './cgroup-paths.ts';
import type { NodePod } from './pod.ts';

/** The guard's maps (BpfRedirector implements it). */
export interface GuardMaps {
  setGuardRoot(cgroupId: bigint | null): void;
  classifyCgroup(cgroupId: bigint, cls: PodClass): void;
  unclassifyCgroup(cgroupId: bigint): boolean;
  listClassified(): ReadonlyMap<bigint, PodClass | null>;
}

export interface ClassifierOptions {
  /** The node's pod root (the redirector's cgroup): the guarded subtree. */
  readonly cgroupRoot: string;
  /** This process's own cgroup directory (exempted before the guard is armed); null when unknown. */
  readonly ownCgroupPath: string | null;
  /**
   * This process's own pod uid (`--pod-uid`): its pod cgroup is exempted before the guard is armed. Needed
   * in a container, whose private cgroup namespace hides its cgroup path from /proc/self/cgroup.
   */
  readonly ownPodUid: string | null;
  readonly guard: GuardMaps;
  readonly log: Logger;
}

/** How often pods whose cgroup was not found are looked for again (only while there are such pods). */
const POLL_MS = 200;
const ENDED_PHASES: ReadonlySet<string> = new Set(['Succeeded', 'Failed']);

export interface DesiredClass {
  readonly pod: NodePod;
  readonly cls: PodClass;
}

export class PodClassifier {
  readonly #opts: ClassifierOptions;
  readonly #log: Logger;
  /** Pod uid → what it should be classified as (from the last pass). */
  #desired: ReadonlyMap<string, DesiredClass> = new Map();
  /** cgroup id → the class written (this process's view of the map). */
  readonly #written = new Map<bigint, PodClass>();
  readonly #keep = new Set<bigint>();
  readonly #watchers = new Map<string, FSWatcher>();
  #poll: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(opts: ClassifierOptions) {
    this.#opts = opts;
    this.#log = opts.log.child({ scope: 'node-agent-guard' });
  }

  /**
   * Exempts this process's cgroup, arms the guard on the pod root and starts watching for pod cgroups. A
   * map that cannot be written is logged: the agent still enrolls pods, without the guard.
   */
  arm(): void {
    try {
      this.#arm();
    } catch (err) {
      this.#log.error({ error: (err as Error).message }, 'fail-closed guard not armed');
    }
  }

  #arm(): void {
    for (const id of exemptOwnCgroups(this.#opts)) this.#keep.add(id);
    this.#reload();
    const rootId = cgroupId(this.#opts.cgroupRoot);
    this.#opts.guard.setGuardRoot(rootId);
    for (const dir of podParentDirs(this.#opts.cgroupRoot)) this.#watch(dir);
    this.#log.info({ cgroupRoot: this.#opts.cgroupRoot, cgroupId: String(rootId) }, 'fail-closed guard armed');
  }

  /**
   * Classifies the cgroups of `desired` (pod uid → class) that exist; with `prune`, also removes the
   * entries of cgroups that belong to no pod any more (only after a full list: until then, kept).
   */
  update(desired: ReadonlyMap<string, DesiredClass>, prune: boolean): void {
    if (this.#stopped) return;
    this.#desired = desired;
    if (prune) this.#reload(); // another process (a ztunnel handing over) may have written the map too
    const live = new Set<bigint>(this.#keep);
    let missing = 0;
    for (const [uid, want] of desired) {
      const found = this.#classifyPod(uid, want, 'pass');
      // Poll only for a pod that may still get its cgroup (not one that ended and had it removed).
      if (found.length === 0 && !want.pod.deleting && !ENDED_PHASES.has(want.pod.phase)) missing++;
      for (const id of found) live.add(id);
    }
    if (prune) this.#prune(live);
    this.#armPoll(missing > 0);
  }

  stop(): void {
    this.#stopped = true;
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
    if (this.#poll !== null) clearTimeout(this.#poll);
    this.#poll = null;
  }

  /** Writes the class of each existing cgroup of the pod; returns their ids. */
  #classifyPod(uid: string, want: DesiredClass, via: 'pass' | 'watch'): bigint[] {
    const ids: bigint[] = [];
    for (const c of podCgroupCandidates(uid, null)) {
      const path = candidatePath(this.#opts.cgroupRoot, c);
      const st = statQuiet(path);
      if (st === null) continue;
      ids.push(st.ino);
      const current = this.#written.get(st.ino);
      // A running pod that joins the mesh keeps connecting directly until its enrollment holds (enrolled
      // wins in the datapath, and the controller announces it as HBONE only then): refusing it meanwhile
      // would fail its requests. Only a cgroup seen for the first time is refused until enrolled.
      const cls = current === 'exempt' && want.cls === 'ambient' ? 'exempt' : want.cls;
      if (current === cls) continue;
      if (!this.#tryWrite(() => this.#opts.guard.classifyCgroup(st.ino, cls), path)) continue;
      this.#written.set(st.ino, cls);
      // The cgroup's age (its ctime: set when the kubelet created it) is the refusal window for this pod.
      const cgroupAgeMs = Math.max(0, Date.now() - Number(st.ctimeMs));
      const fields = { namespace: want.pod.namespace, pod: want.pod.name, podUid: uid, class: cls, via };
      this.#log.info({ ...fields, cgroup: path, cgroupAgeMs }, 'node agent: pod classified');
    }
    return ids;
  }

  #reload(): void {
    try {
      const current = this.#opts.guard.listClassified();
      this.#written.clear();
      for (const [id, cls] of current) if (cls !== null) this.#written.set(id, cls);
    } catch (err) {
      this.#log.warn({ error: (err as Error).message }, 'node agent: classifications not read');
    }
  }

  #prune(live: ReadonlySet<bigint>): void {
    let current: bigint[];
    try {
      current = [...this.#opts.guard.listClassified().keys()];
    } catch (err) {
      this.#log.warn({ error: (err as Error).message }, 'node agent: classifications not read');
      return;
    }
    for (const id of current) {
      if (live.has(id)) continue;
      if (!this.#tryWrite(() => this.#opts.guard.unclassifyCgroup(id), String(id))) continue;
      this.#written.delete(id);
      this.#log.info({ cgroupId: String(id) }, 'node agent: classification removed (pod gone)');
    }
  }

  /** A failed map write (map full, redirector closing) is logged and retried by the next pass. */
  #tryWrite(write: () => unknown, what: string): boolean {
    try {
      write();
      return true;
    } catch (err) {
      this.#log.warn({ cgroup: what, error: (err as Error).message }, 'node agent: classification not written');
      return false;
    }
  }

  #watch(dir: string): void {
    if (this.#stopped || this.#watchers.has(dir)) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (_event, name) => this.#onEntry(dir, name));
    } catch {
      return; // not there (yet): the poll and the passes cover it; its parent's watch adds it later
    }
    watcher.on('error', () => {
      watcher.close();
      this.#watchers.delete(dir);
    });
    this.#watchers.set(dir, watcher);
  }

  /** A directory entry appeared or went: classify a known pod at once, watch a new QoS level. */
  #onEntry(dir: string, name: string | Buffer | null): void {
    if (this.#stopped || typeof name !== 'string') return;
    const path = join(dir, name);
    if (podParentDirs(this.#opts.cgroupRoot).includes(path)) {
      this.#watch(path);
      return;
    }
    const uid = podUidFromCgroupName(basename(path));
    const want = uid === null ? undefined : this.#desired.get(uid);
    if (uid !== null && want !== undefined) this.#classifyPod(uid, want, 'watch');
  }

  #armPoll(needed: boolean): void {
    if (!needed || this.#stopped) {
      if (this.#poll !== null) clearTimeout(this.#poll);
      this.#poll = null;
      return;
    }
    if (this.#poll !== null) return;
    this.#poll = setTimeout(() => {
      this.#poll = null;
      this.update(this.#desired, false);
    }, POLL_MS);
    this.#poll.unref();
  }
}

/**
 * Classifies this process's own cgroup and its pod's cgroups (by `ownPodUid`) `exempt`; returns their ids.
 * Runs before the ztunnel's first connect (xDS, CA) when a guard may already be pinned: a new ztunnel pod
 * (a new uid, while no agent runs on the node) would otherwise be refused its way to the API.
 */
export function exemptOwnCgroups(opts: Omit<ClassifierOptions, 'log'>): bigint[] {
  const { cgroupRoot, ownCgroupPath: own, ownPodUid } = opts;
  const paths = own !== null && isInside(cgroupRoot, own) && own !== cgroupRoot ? [own] : [];
  if (ownPodUid !== null) {
    for (const c of podCgroupCandidates(ownPodUid, null)) paths.push(candidatePath(cgroupRoot, c));
  }
  const ids: bigint[] = [];
  for (const path of paths) {
    const id = cgroupId(path);
    if (id === null) continue;
    opts.guard.classifyCgroup(id, 'exempt');
    ids.push(id);
  }
  return ids;
}

/** This process's cgroup2 directory (from /proc/self/cgroup, under `mount`), or null. */
export function ownCgroupPath(mount: string | null): string | null {
  if (mount === null) return null;
  try {
    const line = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    return line === undefined ? null : join(mount, line.slice(3));
  } catch {
    return null;
  }
}

function cgroupId(path: string): bigint | null {
  return statQuiet(path)?.ino ?? null;
}

function statQuiet(path: string): { ino: bigint; ctimeMs: bigint } | null {
  try {
    const st = statSync(path, { bigint: true });
    return st.isDirectory() ? { ino: st.ino, ctimeMs: st.ctimeMs } : null;
  } catch {
    return null;
  }
}
