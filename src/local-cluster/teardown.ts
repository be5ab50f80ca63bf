// `ferry down`: removes every object of a cluster, also after kill -9 of all Ferry processes or a crash in
// the middle of `up`. Order matters: processes first (they pin netns and keep cgroups populated), then BPF
// pins (links before maps, so programs detach), then network namespaces (their veths go with them), then
// cgroup dirs, then the state dir. Objects come from the journal AND from a sweep of the cluster's name
// prefix, so objects the journal missed are found too. Journal entries outside the cluster's own naming are
// refused (a damaged journal must never make `down` kill or remove something else). Idempotent.
import { existsSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { uninstallPins } from '../redirect-bpf/loader.ts';
import { removePodResolvConfs } from './dns/resolv-conf.ts';
import { ClusterError } from './errors.ts';
import {
  killCgroupTree,
  killPid,
  listNetns,
  pidsInNetns,
  processStartTicks,
  removeCgroupTree,
  runHost,
} from './host.ts';
import { BPFFS_ROOT, type ClusterLayout, NETNS_DIR } from './layout.ts';
import { loadState, type StateRecord } from './state.ts';

export interface TeardownReport {
  /** Objects found and removed (netns names, cgroup dirs, pin roots, `pid <n>`). Empty when nothing was left. */
  readonly removed: readonly string[];
  /** Journal lines that were damaged or named foreign objects (skipped). */
  readonly warnings: readonly string[];
}

export interface TeardownOptions {
  readonly signal: AbortSignal;
  /** Called once per step for progress output. */
  readonly progress?: (line: string) => void;
}

/** Removes everything of the cluster; throws FERRY_CLUSTER_TEARDOWN_INCOMPLETE (after trying all) on failures. */
export async function teardownCluster(layout: ClusterLayout, opts: TeardownOptions): Promise<TeardownReport> {
  const state = loadState(layout.stateDir);
  const warnings = state.problems.map((p) => p.message);
  const removed: string[] = [];
  const failures: string[] = [];
  const attempt = async (what: string, fn: () => Promise<void> | void): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      failures.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const owned = classify(layout, state.records, warnings);
  const netns = new Set([...owned.netns, ...listNetns(NETNS_DIR).filter((n) => n.startsWith(layout.netnsPrefix))]);
  const progress = opts.progress ?? (() => undefined);

  progress('stopping processes');
  await attempt(`kill ${layout.cgroupDir}`, () => killCgroupTree(layout.cgroupDir, opts.signal));
  const strays: number[] = [];
  for (const p of owned.processes) {
    if (processStartTicks(p.pid) === p.startTicks && !isZombie(p.pid)) strays.push(p.pid); // not a recycled pid
  }
  for (const name of netns) strays.push(...pidsInNetns(join(NETNS_DIR, name)));
  for (const pid of new Set(strays)) {
    await attempt(`kill pid ${pid}`, async () => {
      killPid(pid);
      await waitGone(pid, opts.signal);
      removed.push(`pid ${pid}`);
    });
  }

  progress('removing BPF pins');
  for (const pinRoot of new Set([...owned.pinRoots, layout.pinRoot])) {
    if (!existsSync(pinRoot)) continue;
    await attempt(`unpin ${pinRoot}`, () => {
      uninstallPins(pinRoot);
      removed.push(pinRoot);
    });
  }

  progress('removing network namespaces');
  // Pods before the bridge: each pod's netns takes its veth pair along.
  const ordered = [...netns].sort((a, b) => Number(a === layout.bridgeNetns) - Number(b === layout.bridgeNetns));
  for (const name of ordered) {
    if (!existsSync(join(NETNS_DIR, name))) continue;
    await attempt(`netns ${name}`, async () => {
      await runHost('ip', ['netns', 'delete', name]);
      removed.push(`netns ${name}`);
    });
  }

  // The pods' resolver configs (cluster DNS): found by the netns prefix, so also after a crash in `up`.
  await attempt('pod resolv.conf files in /etc/netns', () => {
    for (const dir of removePodResolvConfs(layout.netnsPrefix)) removed.push(dir);
  });

  progress('removing cgroups');
  if (existsSync(layout.cgroupDir)) {
    await attempt(`cgroup ${layout.cgroupDir}`, () => {
      removeCgroupTree(layout.cgroupDir);
      removed.push(layout.cgroupDir);
    });
  }
  // The shared ferry.slice parent goes with the last cluster (rmdir fails harmlessly while others remain).
  try {
    rmdirSync(dirname(layout.cgroupDir));
  } catch {
    // other clusters still live under it, or it is already gone
  }

  if (failures.length > 0) {
    // The state dir stays, so a second `down` retries with the same journal.
    throw new ClusterError(
      'FERRY_CLUSTER_TEARDOWN_INCOMPLETE',
      `cluster ${layout.name}: could not remove:\n  ${failures.join('\n  ')}`,
    );
  }
  rmSync(layout.stateDir, { recursive: true, force: true });
  return { removed, warnings };
}

interface OwnedObjects {
  readonly netns: string[];
  readonly pinRoots: string[];
  readonly processes: Extract<StateRecord, { kind: 'process' }>[];
}

/** Keeps journal entries that belong to this cluster by name; everything else becomes a warning. */
function classify(layout: ClusterLayout, records: readonly StateRecord[], warnings: string[]): OwnedObjects {
  const out: OwnedObjects = { netns: [], pinRoots: [], processes: [] };
  const foreign = (what: string): void => {
    warnings.push(`journal names ${what}, which is not part of cluster ${layout.name}: skipped`);
  };
  for (const r of records) {
    switch (r.kind) {
      case 'netns':
        if (r.name.startsWith(layout.netnsPrefix)) out.netns.push(r.name);
        else foreign(`netns ${r.name}`);
        break;
      case 'cgroup':
        // Removed with the cluster's tree; anything else is never touched.
        if (r.path !== layout.cgroupDir && !r.path.startsWith(`${layout.cgroupDir}/`)) foreign(`cgroup ${r.path}`);
        break;
      case 'pin-root':
        if (r.path === layout.pinRoot || r.path.startsWith(`${join(BPFFS_ROOT, `ferry-${layout.name}`)}/`)) {
          out.pinRoots.push(r.path);
        } else {
          foreign(`pin root ${r.path}`);
        }
        break;
      case 'process':
        out.processes.push(r);
        break;
      case 'link': // goes with its netns
      case 'cluster':
      case 'pod':
      case 'ready':
        break;
      default:
        r satisfies never;
    }
  }
  return out;
}

/** SIGKILL is asynchronous: wait (bounded) until /proc/<pid> is gone or a zombie nobody will reap. */
async function waitGone(pid: number, signal: AbortSignal): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const stat = processStartTicks(pid);
    if (stat === null || isZombie(pid)) return;
    await delay(10, undefined, { signal });
  }
  throw new Error(`pid ${pid} still running 5 s after SIGKILL`);
}

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true; // gone
  }
}
