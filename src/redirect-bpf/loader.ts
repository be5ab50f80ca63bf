// The BPF redirector handle: loads the shipped bpf/redirect.bpf.o through libbpf, reuses or creates the
// pinned maps, reconciles the pinned cgroup links (connect4, connect6, sockops) on one cgroup subtree, and
// serves map reads to the ztunnel. The datapath lives in the pins, not in this object: close() leaves it
// running, a second open() with the same pin root adopts it, uninstall() removes it (docs/redirect.md; docs/architecture.md "Failure semantics").
import { mkdirSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { shippedBpfObject } from './build.ts';
import {
  type EnrollPodOptions,
  enrollPod,
  type PodEnrollment,
  registerMissingListeners,
  resolveCgroup,
  type UnenrollPodOptions,
  unenrollPod,
} from './enroll.ts';
import { BpfError, describeErrno } from './errors.ts';
import { type BpfObjectPtr, type BpfProgramPtr, ffi } from './ffi.ts';
import { classifyCgroup, guardRoot, listClassified, setGuardRoot, unclassifyCgroup } from './guard.ts';
import {
  COUNTER_NAMES,
  COUNTER_SLOTS,
  type CounterName,
  decodeOrigDst,
  decodePodInfo,
  encodeConfig,
  encodeTupleKey,
  encodeU32,
  MAP_SHAPES,
  type MapName,
  normalizeIpv4,
  type OriginalDestination,
  type PodClass,
  type RedirectConfig,
  type RedirectCounters,
  sumPerCpu,
} from './layout.ts';
import { reconcileLink, unpinLink } from './links.ts';
import { BpfMapHandle, type Datapath } from './maps.ts';
import { closeFd, socketNetnsCookie } from './netns.ts';
import { assertRedirectorSupported, probeFeatures } from './probe.ts';

export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/ferry';

const CGROUP_PROGRAMS = [
  { link: 'connect4', program: 'ferry_connect4' },
  { link: 'connect6', program: 'ferry_connect6' },
  { link: 'sockops', program: 'ferry_sockops' },
] as const;

export interface RedirectorOptions {
  /** cgroup2 directory whose subtree holds the pods (not the cgroup root). */
  readonly cgroupPath: string;
  /**
   * Where the cgroup programs are attached instead of `cgroupPath` itself: cgroups inside it (a sidecar's
   * application containers, never its own proxy's cgroup). Pinned as `links/<program>@<cgroup id>`. They run
   * before programs attached higher up (a node ztunnel's), which see the rewritten address (docs/redirect.md,
   * "Sidecar mode: nested attachment").
   */
  readonly attachCgroupPaths?: readonly string[];
  /** bpffs directory for maps and links; tests use /sys/fs/bpf/ferrytest-<pid>-<name>. */
  readonly pinRoot?: string;
  /** The BPF object to load; default: the shipped bpf/redirect.bpf.o (never compiled at run time). */
  readonly objectPath?: string;
  readonly config?: RedirectConfig;
}

/** A socket as the ztunnel sees it after accept() on an in-pod 15001 listener. */
export interface AcceptedSocket {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
}

type State = { phase: 'open'; obj: BpfObjectPtr; maps: ReadonlyMap<MapName, BpfMapHandle> } | { phase: 'closed' };

export class BpfRedirector implements Datapath {
  readonly pinRoot: string;
  readonly cgroupPath: string;
  readonly cgroupId: bigint;
  readonly skLookupProgram: BpfProgramPtr;
  readonly skLookupFd: number;
  #state: State;
  #cpus: number;

  private constructor(init: {
    pinRoot: string;
    cgroupPath: string;
    cgroupId: bigint;
    obj: BpfObjectPtr;
    maps: ReadonlyMap<MapName, BpfMapHandle>;
    skLookupProgram: BpfProgramPtr;
    skLookupFd: number;
  }) {
    this.pinRoot = init.pinRoot;
    this.cgroupPath = init.cgroupPath;
    this.cgroupId = init.cgroupId;
    this.skLookupProgram = init.skLookupProgram;
    this.skLookupFd = init.skLookupFd;
    this.#state = { phase: 'open', obj: init.obj, maps: init.maps };
    this.#cpus = ffi().bpf.numPossibleCpus();
  }

  /** Probes, loads, adopts or creates pins, and reconciles the cgroup links. Idempotent across processes. */
  static async open(opts: RedirectorOptions): Promise<BpfRedirector> {
    const pinRoot = opts.pinRoot ?? DEFAULT_PIN_ROOT;
    assertRedirectorSupported(probeFeatures({ pinRoot }));
    const cgroupPath = resolveCgroup(opts.cgroupPath);
    const cgroupId = statSync(cgroupPath, { bigint: true }).ino;
    const config = encodeConfig(opts.config ?? {}); // validate before touching anything
    const objectPath = opts.objectPath ?? shippedBpfObject();
    for (const dir of ['maps', 'links', 'pods']) mkdirSync(join(pinRoot, dir), { recursive: true });

    const { bpf, errno } = ffi();
    const obj = bpf.objectOpenFile(objectPath, null);
    if (obj === null) {
      const e = errno();
      throw new BpfError('FERRY_BPF_LOAD_FAILED', `opening ${objectPath}: ${describeErrno(e)}`, { errno: e });
    }
    try {
      const mapPtrs = new Map<MapName, NonNullable<ReturnType<typeof bpf.findMapByName>>>();
      for (const name of Object.keys(MAP_SHAPES) as MapName[]) {
        const ptr = bpf.findMapByName(obj, name);
        if (ptr === null) throw new BpfError('FERRY_BPF_LOAD_FAILED', `map ${name} missing from ${objectPath}`);
        bpf.mapSetPinPath(ptr, join(pinRoot, 'maps', name));
        mapPtrs.set(name, ptr);
      }
      const hadPins = readdirSync(join(pinRoot, 'maps')).length > 0;
      const rc = bpf.objectLoad(obj); // reuses compatible pinned maps, pins the new ones
      if (rc !== 0) {
        throw hadPins
          ? new BpfError(
              'FERRY_BPF_PIN_INCOMPATIBLE',
              `loading ${objectPath} with the maps pinned under ${pinRoot} failed (${describeErrno(rc)}); if the map layout changed, uninstall first (ferry down)`,
              { errno: Math.abs(rc) },
            )
          : new BpfError(
              'FERRY_BPF_LOAD_FAILED',
              `loading ${objectPath}: ${describeErrno(rc)} (verifier log on stderr)`,
              {
                errno: Math.abs(rc),
              },
            );
      }
      const maps = new Map<MapName, BpfMapHandle>();
      for (const [name, ptr] of mapPtrs) {
        const shape = MAP_SHAPES[name];
        maps.set(name, new BpfMapHandle(name, bpf.mapFd(ptr), shape.key, shape.value));
      }
      maps.get('config')?.update(encodeU32(0), config);

      for (const target of attachTargets(cgroupPath, cgroupId, opts.attachCgroupPaths)) {
        const cgroupFd = openSync(target.path, 'r');
        try {
          for (const { link, program } of CGROUP_PROGRAMS) {
            const prog = findProgram(obj, program);
            reconcileLink({
              pinPath: join(pinRoot, 'links', `${link}${target.pinSuffix}`),
              progFd: bpf.programFd(prog),
              target: { kind: 'cgroup', cgroupId: target.cgroupId },
              attach: () => bpf.attachCgroup(prog, cgroupFd),
              what: `${program} to cgroup ${target.path}`,
            });
          }
        } finally {
          closeFd(cgroupFd);
        }
      }
      const skLookupProgram = findProgram(obj, 'ferry_sk_lookup');
      return new BpfRedirector({
        pinRoot,
        cgroupPath,
        cgroupId,
        obj,
        maps,
        skLookupProgram,
        skLookupFd: bpf.programFd(skLookupProgram),
      });
    } catch (err) {
      bpf.objectClose(obj);
      throw err;
    }
  }

  map(name: MapName): BpfMapHandle {
    if (this.#state.phase === 'closed') throw new BpfError('FERRY_BPF_CLOSED', 'BPF redirector is closed');
    const handle = this.#state.maps.get(name);
    if (handle === undefined) throw new BpfError('FERRY_BPF_LOAD_FAILED', `map ${name} not loaded`);
    return handle;
  }

  setConfig(config: RedirectConfig): void {
    this.map('config').update(encodeU32(0), encodeConfig(config));
  }

  /** Sum over CPUs of each datapath counter. */
  readCounters(): RedirectCounters {
    const slot = Buffer.alloc(8 * this.#cpus);
    const out = {} as Record<CounterName, bigint>;
    for (const name of COUNTER_NAMES) {
      const where = COUNTER_SLOTS[name];
      const rc = ffi().bpf.mapLookupElem(this.map(where.map).fd, encodeU32(where.index), slot);
      out[name] = rc === 0 ? sumPerCpu(slot, this.#cpus) : 0n;
    }
    return out;
  }

  /** Fail-closed guard (guard.ts): refuse unclassified connects under this cgroup; null turns it off. */
  setGuardRoot(cgroupId: bigint | null): void {
    setGuardRoot(this, cgroupId);
  }

  guardRoot(): bigint | null {
    return guardRoot(this);
  }

  classifyCgroup(cgroupId: bigint, cls: PodClass): void {
    classifyCgroup(this, cgroupId, cls);
  }

  unclassifyCgroup(cgroupId: bigint): boolean {
    return unclassifyCgroup(this, cgroupId);
  }

  listClassified(): Map<bigint, PodClass | null> {
    return listClassified(this);
  }

  /**
   * The original destination of a connection accepted on an enrolled pod's 15001 listener, or null when
   * the datapath has none (not redirected, or evicted). `netnsCookie` is the pod's (PodEnrollment has it);
   * without it the socket's own fd is asked (SO_NETNS_COOKIE).
   */
  lookupOriginalDestination(
    socket: AcceptedSocket,
    opts: { netnsCookie?: bigint; consume?: boolean } = {},
  ): OriginalDestination | null {
    const src = normalizeIpv4(socket.remoteAddress ?? '');
    const dst = normalizeIpv4(socket.localAddress ?? '');
    if (src === null || dst === null || socket.remotePort === undefined || socket.localPort === undefined) return null;
    const netnsCookie = opts.netnsCookie ?? netnsCookieOf(socket);
    const key = encodeTupleKey({
      netnsCookie,
      srcAddress: src,
      srcPort: socket.remotePort,
      dstAddress: dst,
      dstPort: socket.localPort,
    });
    const map = this.map('orig_by_tuple');
    const value = map.lookup(key);
    if (value === null) return null;
    if (opts.consume === true) map.delete(key);
    return decodeOrigDst(value);
  }

  enrollPod(opts: EnrollPodOptions): PodEnrollment {
    return enrollPod(this, opts);
  }

  unenrollPod(opts: UnenrollPodOptions): void {
    unenrollPod(this, opts);
  }

  /** See enroll.ts: re-registers a live enrollment's listeners where their entries vanished. */
  registerMissingListeners(enrollment: PodEnrollment): string[] {
    return registerMissingListeners(this, enrollment);
  }

  /** Enrolled cgroup ids and their pod IPs, read from the pinned map (survives restarts). */
  listEnrollments(): { cgroupId: bigint; podIp: string }[] {
    const map = this.map('enrolled');
    const out: { cgroupId: bigint; podIp: string }[] = [];
    for (const key of map.keys()) {
      const value = map.lookup(key);
      if (value !== null) out.push({ cgroupId: key.readBigUInt64LE(0), podIp: decodePodInfo(value).podIp });
    }
    return out;
  }

  /** Unenrolls every pod whose cgroup id is not in `keep` (after a restart, from the source of truth). */
  reconcileEnrollments(keep: ReadonlySet<bigint>): bigint[] {
    const removed = new Set<bigint>();
    for (const { cgroupId } of this.listEnrollments()) {
      if (!keep.has(cgroupId)) removed.add(cgroupId);
    }
    for (const dir of readdirSync(join(this.pinRoot, 'pods'))) {
      if (/^\d+$/.test(dir) && !keep.has(BigInt(dir))) removed.add(BigInt(dir));
    }
    for (const cgroupId of removed) unenrollPod(this, { cgroupId });
    return [...removed];
  }

  /** Releases this process's handles; pinned maps and links keep the datapath running. Idempotent. */
  close(): void {
    if (this.#state.phase === 'closed') return;
    ffi().bpf.objectClose(this.#state.obj);
    this.#state = { phase: 'closed' };
  }

  /** Unpins every link (detaching the programs) and map, removes the pin root, and closes. */
  uninstall(): void {
    this.close();
    uninstallPins(this.pinRoot);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Removes everything under a pin root, links first so the programs detach before their maps go. */
export function uninstallPins(pinRoot: string): void {
  const podsDir = join(pinRoot, 'pods');
  for (const pod of safeReaddir(podsDir)) unpinLink(join(podsDir, pod, 'sk_lookup'));
  for (const link of safeReaddir(join(pinRoot, 'links'))) unpinLink(join(pinRoot, 'links', link));
  rmSync(pinRoot, { recursive: true, force: true });
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

interface AttachTarget {
  readonly path: string;
  readonly cgroupId: bigint;
  readonly pinSuffix: string;
}

/** The subtree root itself (pins `links/<program>`), or the given cgroups inside it. */
function attachTargets(root: string, rootId: bigint, paths: readonly string[] | undefined): AttachTarget[] {
  if (paths === undefined) return [{ path: root, cgroupId: rootId, pinSuffix: '' }];
  if (paths.length === 0) throw new BpfError('FERRY_BPF_INVALID_ARGUMENT', 'attachCgroupPaths is empty');
  return paths.map((p) => {
    const path = resolveCgroup(p);
    if (!path.startsWith(`${root}/`)) {
      throw new BpfError('FERRY_BPF_CGROUP_OUTSIDE_SUBTREE', `attach cgroup ${path} is not inside ${root}`);
    }
    const cgroupId = statSync(path, { bigint: true }).ino;
    return { path, cgroupId, pinSuffix: `@${cgroupId}` };
  });
}

function findProgram(obj: BpfObjectPtr, name: string): BpfProgramPtr {
  const prog = ffi().bpf.findProgramByName(obj, name);
  if (prog === null) throw new BpfError('FERRY_BPF_LOAD_FAILED', `program ${name} missing from the BPF object`);
  return prog;
}

/** Reads the fd behind a Node socket (libuv internal `_handle.fd`, Linux) to ask for its netns cookie. */
function netnsCookieOf(socket: AcceptedSocket): bigint {
  const handle: unknown = Reflect.get(socket, '_handle');
  if (
    typeof handle === 'object' &&
    handle !== null &&
    'fd' in handle &&
    typeof handle.fd === 'number' &&
    handle.fd >= 0
  ) {
    return socketNetnsCookie(handle.fd);
  }
  throw new BpfError('FERRY_BPF_INVALID_ARGUMENT', 'socket has no fd; pass the pod netnsCookie explicitly');
}
