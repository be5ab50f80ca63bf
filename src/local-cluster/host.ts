// Host operations the local cluster is made of: running ip(8), cgroup2 directories (create, kill, remove),
// and finding or killing processes. Thin wrappers that turn failures into ClusterErrors naming the object.
// Nothing here decides what to create; layout.ts and network.ts do.
import { execFile } from 'node:child_process';
import { on } from 'node:events';
import {
  existsSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  statSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ClusterError } from './errors.ts';
import { isErrno } from './state.ts';

const execFileP = promisify(execFile);

/** Runs a host command; rejects with FERRY_CLUSTER_COMMAND_FAILED carrying the command line and stderr. */
export async function runHost(cmd: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { maxBuffer: 8 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const stderr = typeof err === 'object' && err !== null && 'stderr' in err ? String(err.stderr).trim() : '';
    throw new ClusterError('FERRY_CLUSTER_COMMAND_FAILED', `${cmd} ${args.join(' ')} failed: ${stderr}`, {
      cause: err,
    });
  }
}

/** Kills every process in a cgroup tree (cgroup.kill, kernel ≥ 5.14) and waits until it is empty. */
export async function killCgroupTree(dir: string, signal: AbortSignal): Promise<void> {
  if (!existsSync(dir)) return;
  try {
    writeFileSync(join(dir, 'cgroup.kill'), '1');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return; // removed concurrently
    // Old kernel: SIGKILL each listed process, children first.
    for (const d of walkCgroups(dir).reverse()) for (const pid of cgroupProcs(d)) killPid(pid);
  }
  await waitUnpopulated(dir, signal);
}

/** Removes a cgroup tree bottom-up; the caller killed its processes first. Missing dirs are fine. */
export function removeCgroupTree(dir: string): void {
  for (const d of walkCgroups(dir).reverse()) {
    try {
      rmdirSync(d);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }
}

/** The dir and all its descendant cgroup dirs, parents before children. */
export function walkCgroups(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(dir, e.name));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
  return [dir, ...entries.flatMap(walkCgroups)];
}

export function cgroupProcs(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

/** Resolves once `populated 0` (inotify reports cgroup.events changes) or the directory is gone. */
async function waitUnpopulated(dir: string, signal: AbortSignal): Promise<void> {
  const eventsFile = join(dir, 'cgroup.events');
  let watcher: ReturnType<typeof watch>;
  try {
    watcher = watch(eventsFile, { signal });
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    throw err;
  }
  try {
    const changes = on(watcher, 'change', { signal });
    while (isPopulated(eventsFile)) await changes.next();
  } finally {
    watcher.close();
  }
}

function isPopulated(eventsFile: string): boolean {
  try {
    return /^populated 1$/m.test(readFileSync(eventsFile, 'utf8'));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or null when the process is gone. */
export function processStartTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: fields after it start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

export function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if (!isErrno(err, 'ESRCH')) throw err;
  }
}

/** Pids whose network namespace is the one pinned at `netnsPath` (matched by inode; no name lookups). */
export function pidsInNetns(netnsPath: string): number[] {
  let ino: bigint;
  try {
    ino = statSync(netnsPath, { bigint: true }).ino;
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const link = readlinkSync(`/proc/${entry}/ns/net`); // "net:[4026532000]"
      if (link === `net:[${ino}]`) out.push(Number(entry));
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

export function listNetns(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

/** Whether the process runs (exists and is no zombie). */
export function isRunningPid(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
