// Finds a pod on the host (the thin fs layer over cgroup-paths.ts): its cgroup v2 directory under the
// node's pod root, and its network namespace through a process in that cgroup tree
// (`<host-proc>/<pid>/ns/net`, the sandbox's process first: it outlives restarting app containers).
// With cgroup v1 only (no pod cgroup under the v2 root, one in a v1 hierarchy), the pod's processes can
// still be found, but the BPF redirector attaches to cgroup v2 only: the pod is reported, not captured.
import { readFileSync, statSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { findCgroup2Mount } from '../../redirect-bpf/probe.ts';
import {
  type CgroupDriver,
  candidatePath,
  isInside,
  isSafePodUid,
  orderContainerCgroups,
  podCgroupCandidates,
} from './cgroup-paths.ts';
import { NodeAgentError } from './errors.ts';
import type { NodePod } from './pod.ts';

export interface LocateOptions {
  /** cgroup v2 directory holding the node's pods (`--cgroup-root`; the redirector attaches there). */
  readonly cgroupRoot: string;
  /** The host's /proc (`--host-proc`; a DaemonSet mounts it at /host/proc). */
  readonly hostProc: string;
  /** Mount points of cgroup v1 hierarchies (only to explain a v1-only pod). */
  readonly v1Roots: readonly string[];
}

export interface PodLocation {
  readonly cgroupPath: string;
  readonly netnsPath: string;
  readonly pid: number;
  readonly driver: CgroupDriver;
}

/** Nested cgroups below a container are searched this deep (runtimes use one level). */
const MAX_SEARCH_DEPTH = 4;

/** Where the pod's cgroup and netns are. Throws NodeAgentError (the caller logs, counts and retries). */
export async function locatePod(pod: NodePod, opts: LocateOptions): Promise<PodLocation> {
  const who = `pod ${pod.namespace}/${pod.name} (uid ${JSON.stringify(pod.uid)})`;
  if (!isSafePodUid(pod.uid)) {
    throw new NodeAgentError('FERRY_NODE_AGENT_BAD_POD_UID', `${who}: the uid is not a safe cgroup name`);
  }
  const found = await findPodCgroup(pod, opts.cgroupRoot);
  if (found === null) {
    const v1 = await findInV1(pod, opts);
    if (v1 !== null) {
      throw new NodeAgentError(
        'FERRY_NODE_AGENT_CGROUP_V1',
        `${who}: found only in the cgroup v1 hierarchy ${v1.cgroupPath} (pid ${v1.pid}, netns ${v1.netnsPath}); ` +
          'the BPF redirector needs the pod in cgroup v2 (unified hierarchy), so it is not captured',
      );
    }
    throw new NodeAgentError(
      'FERRY_NODE_AGENT_POD_NOT_FOUND',
      `${who}: no cgroup under ${opts.cgroupRoot} (tried the systemd and cgroupfs layouts)`,
    );
  }
  const pid = await findPodProcess(found.path, pod.containerIds, opts.hostProc);
  if (pid === null) {
    throw new NodeAgentError('FERRY_NODE_AGENT_NO_PROCESS', `${who}: no process in ${found.path} yet`);
  }
  return {
    cgroupPath: found.path,
    netnsPath: join(opts.hostProc, String(pid), 'ns', 'net'),
    pid,
    driver: found.driver,
  };
}

async function findPodCgroup(pod: NodePod, root: string): Promise<{ path: string; driver: CgroupDriver } | null> {
  for (const candidate of podCgroupCandidates(pod.uid, pod.qosClass)) {
    const path = candidatePath(root, candidate);
    if (!isInside(root, path)) continue; // the uid was validated; this is a second fence
    if (await isDirectory(path)) return { path, driver: candidate.driver };
  }
  return null;
}

async function findInV1(
  pod: NodePod,
  opts: LocateOptions,
): Promise<{ cgroupPath: string; pid: number; netnsPath: string } | null> {
  for (const root of opts.v1Roots) {
    const found = await findPodCgroup(pod, root);
    if (found === null) continue;
    const pid = await findPodProcess(found.path, pod.containerIds, opts.hostProc);
    return {
      cgroupPath: found.path,
      pid: pid ?? 0,
      netnsPath: pid === null ? '(no process yet)' : join(opts.hostProc, String(pid), 'ns', 'net'),
    };
  }
  return null;
}

/** A live process of the pod whose netns file exists: sandbox first, then app containers, then the rest. */
async function findPodProcess(
  podCgroup: string,
  appContainerIds: ReadonlySet<string>,
  hostProc: string,
): Promise<number | null> {
  const children = await childDirs(podCgroup);
  for (const child of orderContainerCgroups(children, appContainerIds)) {
    const pid = await firstProcessIn(join(podCgroup, child), hostProc, MAX_SEARCH_DEPTH);
    if (pid !== null) return pid;
  }
  return firstPid(podCgroup, hostProc); // a runtime that runs the pod's processes in the pod cgroup itself
}

async function firstProcessIn(dir: string, hostProc: string, depth: number): Promise<number | null> {
  const own = await firstPid(dir, hostProc);
  if (own !== null || depth === 0) return own;
  for (const child of (await childDirs(dir)).sort()) {
    const pid = await firstProcessIn(join(dir, child), hostProc, depth - 1);
    if (pid !== null) return pid;
  }
  return null;
}

async function firstPid(dir: string, hostProc: string): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(join(dir, 'cgroup.procs'), 'utf8');
  } catch {
    return null; // the cgroup went away meanwhile
  }
  const hostNetns = await netnsId(join(hostProc, '1', 'ns', 'net'));
  for (const line of text.split('\n')) {
    const pid = Number(line);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    // The process may have exited between the two reads: take the next one. One still in the host's netns
    // (joined the cgroup, not yet its namespace; or a host-network helper) is never the pod's netns.
    const id = await netnsId(join(hostProc, String(pid), 'ns', 'net'));
    if (id !== null && id !== hostNetns) return pid;
  }
  return null;
}

/** Device and inode of a netns file (what tells two namespaces apart), or null when it is gone. */
async function netnsId(path: string): Promise<string | null> {
  try {
    const s = await stat(path, { bigint: true });
    return `${s.dev}:${s.ino}`;
  } catch {
    return null;
  }
}

async function childDirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** The default pod root: `kubepods.slice` (systemd driver) or `kubepods` (cgroupfs) under the cgroup2 mount. */
export function detectCgroupRoot(mounts: string = readFileSync('/proc/self/mounts', 'utf8')): string {
  const v2 = findCgroup2Mount(mounts);
  if (v2 === null) {
    throw new NodeAgentError(
      'FERRY_NODE_AGENT_NO_CGROUP_ROOT',
      'no cgroup2 mount: the BPF redirector needs cgroup v2 (give --cgroup-root to name the pods directory)',
    );
  }
  for (const top of ['kubepods.slice', 'kubepods']) {
    const dir = join(v2, top);
    if (isDirectorySync(dir)) return dir;
  }
  throw new NodeAgentError(
    'FERRY_NODE_AGENT_NO_CGROUP_ROOT',
    `neither kubepods.slice nor kubepods under ${v2}: give --cgroup-root (the cgroup2 directory of this node's pods)`,
  );
}

/** Mount points of cgroup v1 hierarchies in /proc/self/mounts text. */
export function cgroupV1Mounts(mounts: string): string[] {
  return mounts
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f[2] === 'cgroup' && f[1] !== undefined)
    .map((f) => (f[1] as string).replaceAll('\\040', ' '));
}

function isDirectorySync(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // not there: try the next layout
  }
}
