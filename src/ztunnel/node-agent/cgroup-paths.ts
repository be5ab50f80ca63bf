// Where the kubelet puts a pod's cgroup, as the container runtime lays it out (pure path logic; the fs
// layer is locate.ts). The kubelet names the pod cgroup from the pod's uid and QoS class:
//   systemd driver:  kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid, - → _>.slice
//                    kubepods.slice/kubepods-pod<uid_>.slice               (Guaranteed: no QoS level)
//   cgroupfs driver: kubepods/<qos>/pod<uid>, kubepods/pod<uid>            (Guaranteed)
// and the runtime names each container's cgroup inside it: containerd `cri-containerd-<id>.scope` (systemd)
// or `<id>` (cgroupfs), CRI-O `crio-<id>.scope` / `crio-<id>` with its monitor in `crio-conmon-<id>…`,
// cri-dockerd `docker-<id>.scope`. Nothing is assumed about the driver: every layout is a candidate and
// the fs layer picks the one that exists. The uid comes from the API, so it is validated before it
// becomes a path component: nothing may escape the cgroup root.
import { basename, join } from 'node:path';
import type { QosClass } from './pod.ts';

/** A Kubernetes uid (a UUID in practice): letters, digits and `-` only, so it is one safe path component. */
const UID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/;

export function isSafePodUid(uid: string): boolean {
  return UID_PATTERN.test(uid);
}

export type CgroupDriver = 'systemd' | 'cgroupfs';

export interface PodCgroupCandidate {
  readonly driver: CgroupDriver;
  readonly qosClass: QosClass;
  /** Path segments from the cgroup hierarchy's root, starting with `kubepods.slice` or `kubepods`. */
  readonly segments: readonly string[];
}

const ALL_QOS: readonly QosClass[] = ['Guaranteed', 'Burstable', 'BestEffort'];

/**
 * Every place the pod's cgroup can be (both drivers; every QoS class when it is not known yet), most likely
 * first; [] for a uid that is not a safe path component.
 */
export function podCgroupCandidates(uid: string, qosClass: QosClass | null): PodCgroupCandidate[] {
  if (!isSafePodUid(uid)) return [];
  const out: PodCgroupCandidate[] = [];
  for (const driver of ['systemd', 'cgroupfs'] as const) {
    for (const qos of qosClass === null ? ALL_QOS : [qosClass]) {
      out.push({ driver, qosClass: qos, segments: podSegments(driver, qos, uid) });
    }
  }
  return out;
}

function podSegments(driver: CgroupDriver, qos: QosClass, uid: string): string[] {
  const level = qos.toLowerCase(); // burstable, besteffort
  if (driver === 'systemd') {
    const escaped = uid.replaceAll('-', '_'); // systemd unit names use `-` as the hierarchy separator
    return qos === 'Guaranteed'
      ? ['kubepods.slice', `kubepods-pod${escaped}.slice`]
      : ['kubepods.slice', `kubepods-${level}.slice`, `kubepods-${level}-pod${escaped}.slice`];
  }
  return qos === 'Guaranteed' ? ['kubepods', `pod${uid}`] : ['kubepods', level, `pod${uid}`];
}

/**
 * The candidate as a path under `root`. `root` is either the directory holding `kubepods.slice`/`kubepods`
 * (a hierarchy's mount point, or a test's node directory) or that top-level directory itself (the default
 * `--cgroup-root`, where the redirector attaches): then its own name is not repeated.
 */
export function candidatePath(root: string, candidate: PodCgroupCandidate): string {
  const [top, ...rest] = candidate.segments;
  return basename(root) === top ? join(root, ...rest) : join(root, ...candidate.segments);
}

/** True when `path` is `root` or inside it (after normalisation). */
export function isInside(root: string, path: string): boolean {
  const r = join(root, '/');
  return join(path, '/').startsWith(r);
}

export type ContainerCgroup =
  | { readonly kind: 'container'; readonly id: string }
  /** CRI-O's conmon: runs in the host network namespace, never a source of the pod's netns. */
  | { readonly kind: 'monitor'; readonly id: string }
  | { readonly kind: 'unknown' };

const CONTAINER_ID = '([0-9a-f]{12,128})';
const CONTAINER_NAMES: ReadonlyArray<{ re: RegExp; kind: 'container' | 'monitor' }> = [
  { re: new RegExp(`^crio-conmon-${CONTAINER_ID}(?:\\.scope)?$`), kind: 'monitor' },
  { re: new RegExp(`^cri-containerd-${CONTAINER_ID}\\.scope$`), kind: 'container' },
  { re: new RegExp(`^crio-${CONTAINER_ID}(?:\\.scope)?$`), kind: 'container' },
  { re: new RegExp(`^docker-${CONTAINER_ID}\\.scope$`), kind: 'container' },
  { re: new RegExp(`^${CONTAINER_ID}$`), kind: 'container' }, // cgroupfs driver: the bare id
];

/** What a child directory of a pod cgroup holds, from its name. */
export function parseContainerCgroup(name: string): ContainerCgroup {
  for (const { re, kind } of CONTAINER_NAMES) {
    const m = re.exec(name);
    if (m !== null) return { kind, id: m[1] as string };
  }
  return { kind: 'unknown' };
}

/**
 * Child cgroups of a pod in the order to look for a process whose netns is the pod's: the sandbox (the
 * pause container: a container the pod's status does not list) first, since it lives as long as the pod
 * while app containers restart; then app containers; then cgroups of unknown names. Monitors never.
 */
export function orderContainerCgroups(children: readonly string[], appContainerIds: ReadonlySet<string>): string[] {
  const rank = (name: string): number => {
    const c = parseContainerCgroup(name);
    if (c.kind === 'monitor') return -1;
    if (c.kind === 'unknown') return 2;
    return appContainerIds.has(c.id) ? 1 : 0;
  };
  return children
    .map((name) => ({ name, rank: rank(name) }))
    .filter((c) => c.rank >= 0)
    .sort((a, b) => a.rank - b.rank || a.name.localeCompare(b.name))
    .map((c) => c.name);
}

const POD_DIR_NAMES: readonly RegExp[] = [
  /^kubepods-(?:burstable-|besteffort-)?pod([A-Za-z0-9_]+)\.slice$/, // systemd (uid with `_` for `-`)
  /^pod([A-Za-z0-9-]+)$/, // cgroupfs
];

/** The pod uid a kubelet pod cgroup directory is named after, or null for any other name. */
export function podUidFromCgroupName(name: string): string | null {
  for (const re of POD_DIR_NAMES) {
    const m = re.exec(name);
    if (m !== null) {
      const uid = (m[1] as string).replaceAll('_', '-');
      return isSafePodUid(uid) ? uid : null;
    }
  }
  return null;
}

/**
 * The directories a pod cgroup appears in (the top-level `kubepods.slice`/`kubepods` and their QoS
 * levels), both drivers, as paths under `root` (see candidatePath).
 */
export function podParentDirs(root: string): string[] {
  const layouts: ReadonlyArray<readonly string[]> = [
    ['kubepods.slice'],
    ['kubepods.slice', 'kubepods-burstable.slice'],
    ['kubepods.slice', 'kubepods-besteffort.slice'],
    ['kubepods'],
    ['kubepods', 'burstable'],
    ['kubepods', 'besteffort'],
  ];
  return layouts.map((segments) => {
    const [top, ...rest] = segments;
    return basename(root) === top ? join(root, ...rest) : join(root, ...segments);
  });
}
