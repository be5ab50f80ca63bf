// Host-side plumbing for namespaced tests: running ip(8), naming, and the sweep of leftovers from dead test
// runs. Everything a test creates is named `ferrytest-<pid>-…` (netns, cgroup dirs, bpffs pin roots), so a
// resource whose pid is no longer alive is garbage and can be removed safely at suite start.
import { execFile } from 'node:child_process';
import { on } from 'node:events';
import { existsSync, readdirSync, readFileSync, rmdirSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { uninstallPins } from '../src/redirect-bpf/loader.ts';
import { cgroup2MountPoint } from '../src/redirect-bpf/probe.ts';

const execFileP = promisify(execFile);

export const TEST_PREFIX = 'ferrytest-';
export const NETNS_DIR = '/run/netns';
export const BPFFS_ROOT = '/sys/fs/bpf';

/** Runs a command, resolving stdout; rejects with the command line and stderr in the message. */
export async function run(cmd: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { maxBuffer: 8 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const stderr = typeof err === 'object' && err !== null && 'stderr' in err ? String(err.stderr).trim() : '';
    throw new Error(`${cmd} ${args.join(' ')} failed: ${stderr}`, { cause: err });
  }
}

export function cgroup2Root(): string {
  const mount = cgroup2MountPoint();
  if (mount === null) throw new Error('no cgroup2 mount');
  return mount;
}

export function listNetns(): string[] {
  return existsSync(NETNS_DIR) ? readdirSync(NETNS_DIR) : [];
}

/** Names (netns, cgroup dirs, pin roots) that belong to this process. */
export function ownedBy(pid: number, names: readonly string[]): string[] {
  return names.filter((n) => n.startsWith(`${TEST_PREFIX}${pid}-`));
}

function ownerPid(name: string): number | null {
  const m = /^ferrytest-(\d+)-/.exec(name);
  return m ? Number(m[1]) : null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return typeof err === 'object' && err !== null && 'code' in err && err.code === 'EPERM';
  }
}

function isStale(name: string): boolean {
  const pid = ownerPid(name);
  return pid !== null && pid !== process.pid && !isAlive(pid);
}

/** Kills what runs in a cgroup tree and removes it, children first, once its processes are gone. */
export async function removeCgroupTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await removeCgroupTree(join(dir, entry.name));
  }
  try {
    writeFileSync(join(dir, 'cgroup.kill'), '1');
  } catch {
    // cgroup.kill needs 5.14; without it the tree is expected to be empty already
  }
  await waitUnpopulated(dir);
  rmdirSync(dir);
}

/** Resolves once no process is left in the cgroup tree (cgroup.events `populated 0`, which inotify reports). */
async function waitUnpopulated(dir: string): Promise<void> {
  const eventsFile = join(dir, 'cgroup.events');
  const watcher = watch(eventsFile);
  try {
    const changes = on(watcher, 'change');
    while (/^populated 1$/m.test(readFileSync(eventsFile, 'utf8'))) await changes.next();
  } finally {
    watcher.close();
  }
}

/** Removes netns, cgroups and pin roots left by test processes that are gone. */
export async function sweepTestLeftovers(): Promise<void> {
  for (const pinRoot of existsSync(BPFFS_ROOT) ? readdirSync(BPFFS_ROOT) : []) {
    if (isStale(pinRoot)) uninstallPins(join(BPFFS_ROOT, pinRoot)); // force: a concurrent sweeper is fine
  }
  const cgRoot = cgroup2Root();
  for (const dir of readdirSync(cgRoot)) {
    // Another test file may be sweeping the same leftovers right now: losing that race is fine.
    if (isStale(dir)) await removeCgroupTree(join(cgRoot, dir)).catch(() => undefined);
  }
  for (const ns of listNetns()) {
    if (isStale(ns)) await run('ip', ['netns', 'delete', ns]).catch(() => undefined);
  }
}

/** Processes currently in a cgroup (for assertions and debugging). */
export function cgroupProcs(dir: string): number[] {
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

/** Names of netns, cgroup dirs and pin roots this process still owns (should be none after teardown). */
export function leftoversOfThisProcess(): string[] {
  const pins = existsSync(BPFFS_ROOT) ? readdirSync(BPFFS_ROOT) : [];
  return ownedBy(process.pid, [...listNetns(), ...readdirSync(cgroup2Root()), ...pins]);
}
