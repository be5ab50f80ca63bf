// Running processes inside a pod: the child joins the pod's cgroup first, then enters its netns with
// `nsenter --net` (docs/redirect.md: `ip netns exec` would remount /sys and hide the cgroup2 mount). Being
// in the pod's cgroup is what makes the BPF redirector capture it, and what lets `ferry down` kill it.
// Containers run detached with logs in files, so they outlive `ferry up`; `ferry exec` runs attached.
// When the pod has a resolver config (/etc/netns/<netns>/resolv.conf, cluster DNS), the command runs in a
// private mount namespace with it bind-mounted over /etc/resolv.conf, as `ip netns exec` would do.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { podResolvConfPath, withPodResolvConf } from './dns/resolv-conf.ts';
import { processStartTicks } from './host.ts';
import type { ClusterLayout } from './layout.ts';
import type { StateJournal } from './state.ts';

// $1 cgroup.procs, $2 netns path, rest the command. Exit 97/98 tell "could not join" apart from the app.
const IN_POD_SCRIPT = 'echo $$ > "$1" || exit 97; ns="$2"; shift 2; exec nsenter --net="$ns" -- "$@" || exit 98';

export interface PodTarget {
  readonly netnsPath: string;
  /** cgroup dir the process joins (the pod's, or a container child of it). */
  readonly cgroupDir: string;
}

export interface SpawnInPodOptions {
  readonly env: Readonly<Record<string, string>>;
  readonly stdio: 'inherit' | { readonly logFile: string };
}

/** Spawns argv inside the pod (cgroup, then netns). The caller owns the returned child. */
export function spawnInPod(
  target: PodTarget,
  argv: readonly [string, ...string[]],
  opts: SpawnInPodOptions,
): ChildProcess {
  const resolvConf = podResolvConfPath(basename(target.netnsPath));
  const command = existsSync(resolvConf) ? withPodResolvConf(argv, resolvConf) : argv;
  const args = ['-c', IN_POD_SCRIPT, 'sh', join(target.cgroupDir, 'cgroup.procs'), target.netnsPath, ...command];
  if (opts.stdio === 'inherit') return spawn('sh', args, { stdio: 'inherit', env: { ...opts.env } });
  const fd = openSync(opts.stdio.logFile, 'a', 0o600);
  try {
    // Own process group: a Ctrl-C of `ferry up` must not kill the pods, and `ferry up` may exit before them.
    const child = spawn('sh', args, { stdio: ['ignore', fd, fd], env: { ...opts.env }, detached: true });
    child.unref();
    return child;
  } finally {
    closeSync(fd); // the child holds its own copy
  }
}

// $1 cgroup.procs, rest the command: for Ferry's own processes, which stay in the host netns.
const IN_CGROUP_SCRIPT = 'echo $$ > "$1" || exit 97; shift; exec "$@"';

/** Spawns argv detached in a cgroup (host netns), logs to a file. For the controller and ztunnels. */
export async function startInCgroup(
  journal: StateJournal,
  cgroupDir: string,
  role: string,
  argv: readonly [string, ...string[]],
  opts: { readonly env: Readonly<Record<string, string>>; readonly logFile: string },
): Promise<number> {
  journal.record({ kind: 'cgroup', path: cgroupDir });
  mkdirSync(cgroupDir, { recursive: true });
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const fd = openSync(opts.logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    child = spawn('sh', ['-c', IN_CGROUP_SCRIPT, 'sh', join(cgroupDir, 'cgroup.procs'), ...argv], {
      stdio: ['ignore', fd, fd],
      env: { ...opts.env },
      detached: true,
    });
    child.unref();
  } finally {
    closeSync(fd);
  }
  const pid = await spawned(child);
  const startTicks = processStartTicks(pid);
  if (startTicks !== null) journal.record({ kind: 'process', pid, startTicks, role });
  return pid;
}

export interface ContainerLaunch {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  readonly podCgroupDir: string;
  readonly netnsPath: string;
  readonly argv: readonly [string, ...string[]];
  readonly env: Readonly<Record<string, string>>;
}

export interface StartedContainer {
  readonly pid: number;
  readonly cgroupDir: string;
  readonly logFile: string;
}

/** Starts one container detached in `<pod cgroup>/<container>`, journaling its cgroup and pid. */
export async function startContainer(
  layout: ClusterLayout,
  journal: StateJournal,
  launch: ContainerLaunch,
): Promise<StartedContainer> {
  const cgroupDir = join(launch.podCgroupDir, launch.container);
  journal.record({ kind: 'cgroup', path: cgroupDir });
  mkdirSync(cgroupDir, { recursive: true });
  mkdirSync(layout.logDir, { recursive: true });
  const logFile = join(layout.logDir, `${launch.namespace}_${launch.pod}_${launch.container}.log`);
  const child = spawnInPod({ netnsPath: launch.netnsPath, cgroupDir }, launch.argv, {
    env: launch.env,
    stdio: { logFile },
  });
  const pid = await spawned(child);
  // Journaled after the fact (a pid cannot be known before): the cgroup, journaled before, covers the gap.
  const startTicks = processStartTicks(pid);
  if (startTicks !== null) {
    journal.record({ kind: 'process', pid, startTicks, role: `${launch.namespace}/${launch.pod}/${launch.container}` });
  }
  return { pid, cgroupDir, logFile };
}

function spawned(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => {
      child.off('error', reject);
      child.on('error', () => undefined); // later errors surface through the log file and `ferry status`
      if (child.pid === undefined) reject(new Error('spawned child has no pid'));
      else resolve(child.pid);
    });
  });
}
