// The local cluster's supervisor (`ferry supervise --cluster <name>`): what the kubelet does for a
// DaemonSet's pods. Started by `ferry up -f` as a journaled system process (so `ferry down` stops it with
// the rest), it watches every node ztunnel, waypoint and the cluster DNS (`ferry dns`), and in a bare
// cluster (`ferry up --bare`, bare-files.ts) the API server, kubelets and kube-controllers, and starts a dead
// one again with the same arguments and environment (system-processes.ts), with a short CrashLoopBackOff
// (restart-policy.ts).
// It is not the parent of the first processes (`ferry up` started them and exited), so it watches by pid
// and start time from the journal, polled every 100 ms. Each restart is journaled like the first start.
// What it saw goes to supervisor.json (restarts per process) for `ferry status`. The controller is not
// supervised: `ferry up` restarts it, and the supervisor itself (docs/operations.md, "Supervision").
// It also carries out `ferry rollout restart ztunnel` (a request file; ztunnel-replacement.ts), one node
// at a time, while it keeps watching the other processes.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../runtime/logger.ts';
import { BARE_FILE, bareLaunches } from './bare-files.ts';
import type { ClusterCliEnv } from './cli-env.ts';
import { type LocalMeshConfig, MESH_FILE } from './controller/mesh-files.ts';
import { processStartTicks } from './host.ts';
import type { ClusterLayout } from './layout.ts';
import { startInCgroup } from './pods.ts';
import { startSystemProcessAgain } from './restart.ts';
import {
  DEFAULT_RESTART_POLICY,
  NEW_RESTART_STATE,
  onExit,
  onRestart,
  onRunning,
  type RestartPolicySettings,
  type RestartState,
} from './restart-policy.ts';
import { readLocalSidecars, recordSidecarPid } from './sidecars.ts';
import { loadState, StateJournal, type StateRecord } from './state.ts';
import { dnsLaunch, type SystemLaunch, sidecarLaunch, waypointLaunch, ztunnelLaunch } from './system-processes.ts';
import { type LocalWaypoint, WAYPOINTS_FILE } from './waypoints.ts';
import { replaceZtunnel } from './ztunnel-replacement.ts';

export const SUPERVISOR_ROLE = 'supervisor';
export const SUPERVISOR_FILE = 'supervisor.json';
/** `ferry rollout restart ztunnel` writes it; the supervisor takes it and reports in supervisor.json. */
export const ROLLOUT_REQUEST_FILE = 'rollout-request.json';

export interface RolloutRequest {
  readonly id: string;
  /** Node names, replaced in this order. */
  readonly nodes: readonly string[];
}

export interface RolloutReport {
  readonly id: string;
  readonly phase: 'running' | 'done' | 'failed';
  readonly results: readonly {
    readonly node: string;
    readonly oldPid: number | null;
    readonly pid: number | null;
    readonly readyMs: number | null;
    readonly oldExitMs: number | null;
    readonly error: string | null;
  }[];
}
const POLL_MS = 100;

/** One supervised process, as supervisor.json reports it. */
export interface SupervisedStatus {
  readonly role: string;
  readonly kind: SystemLaunch['kind'];
  readonly pid: number | null;
  readonly running: boolean;
  readonly restarts: number;
  readonly lastExitAt: string | null;
  /** When the next start is due (in a crash-loop backoff), or null. */
  readonly nextStartAt: string | null;
}

export interface SupervisorReport {
  readonly pid: number;
  readonly updatedAt: string;
  readonly processes: readonly SupervisedStatus[];
  /** The latest `ferry rollout restart ztunnel`, if any since this supervisor started. */
  readonly rollout?: RolloutReport | null;
}

interface Watched {
  launch: SystemLaunch;
  pid: number | null;
  startTicks: string | null;
  restart: RestartState;
  restartAtMs: number | null;
  /** Being replaced (rollout): not restarted meanwhile. */
  rolling: boolean;
}

export interface SupervisorOptions {
  readonly env: ClusterCliEnv;
  readonly layout: ClusterLayout;
  readonly config: LocalMeshConfig;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** The environment tuning variables come from (FERRY_*_NODE_OPTIONS). */
  readonly from?: NodeJS.ProcessEnv;
  readonly policy?: RestartPolicySettings;
}

/** Runs until `signal` aborts or the cluster's state dir is gone (after `ferry down`). */
export async function runSupervisor(opts: SupervisorOptions): Promise<void> {
  const { layout, log } = opts;
  let config = opts.config; // a rollout moves a node's ztunnel to new ports
  let rollout: RolloutReport | null = null;
  let rolloutRunning = false;
  const policy = opts.policy ?? DEFAULT_RESTART_POLICY;
  const watched = new Map<string, Watched>();
  // Restart counts survive a restart of the supervisor itself (`ferry up` starts it again).
  const earlier = new Map((readSupervisorReport(layout.stateDir)?.processes ?? []).map((p) => [p.role, p.restarts]));
  const adopt = (launch: SystemLaunch, journal: readonly StateRecord[]): void => {
    const last = journal.filter((r) => r.kind === 'process' && r.role === launch.role).at(-1);
    const rec = last?.kind === 'process' ? last : null;
    watched.set(launch.role, {
      launch,
      pid: rec?.pid ?? null,
      startTicks: rec?.startTicks ?? null,
      // Adopted processes count as started now: their own start time is not known in ms.
      restart: { ...NEW_RESTART_STATE, restarts: earlier.get(launch.role) ?? 0 },
      restartAtMs: null,
      rolling: false,
    });
  };
  let dirty = true;
  const refreshLaunches = (): void => {
    const journal = loadState(layout.stateDir).records;
    const launches = launchesOf({ ...opts, config });
    for (const launch of launches) {
      const w = watched.get(launch.role);
      if (w === undefined) adopt(launch, journal);
      else w.launch = launch; // e.g. waypoints.json rewritten: same role, maybe new arguments
    }
    // A sidecar `ferry migrate namespace` took out of sidecars.json is not ours to restart any more (the
    // runner stops it once supervisor.json no longer lists it).
    const roles = new Set(launches.map((l) => l.role));
    for (const [role, w] of watched) {
      if (w.launch.kind === 'sidecar' && !roles.has(role)) {
        watched.delete(role);
        dirty = true;
      }
    }
  };
  refreshLaunches();
  log.info({ processes: [...watched.keys()] }, 'supervising');
  let lastRefresh = Date.now();
  while (!opts.signal.aborted) {
    const now = Date.now();
    if (now - lastRefresh >= 5_000) {
      refreshLaunches(); // waypoints added by a later `ferry up`; cheap enough every few seconds
      lastRefresh = now;
    }
    if (!rolloutRunning) {
      const request = takeRolloutRequest(layout.stateDir);
      if (request !== null) {
        rolloutRunning = true;
        rollout = { id: request.id, phase: 'running', results: [] };
        dirty = true;
        const done = (report: RolloutReport): void => {
          rollout = report;
          rolloutRunning = false;
          dirty = true;
        };
        void runRollout(request, (r) => {
          rollout = r;
          dirty = true;
        }).then(done, (err: unknown) => {
          log.error({ error: String(err) }, 'rollout failed');
          done({ id: request.id, phase: 'failed', results: [] });
        });
      }
    }
    for (const w of watched.values()) {
      if (w.rolling) continue;
      if (w.restartAtMs === null) {
        if (isAlive(w)) {
          w.restart = onRunning(w.restart, now);
          continue;
        }
        const exited = onExit(w.restart, now, policy);
        w.restart = exited.state;
        w.restartAtMs = exited.restartAtMs;
        dirty = true;
        log.warn(
          { role: w.launch.role, pid: w.pid, crashLoop: exited.state.crashLoop, backoffMs: exited.restartAtMs - now },
          'process exited; restarting it',
        );
      }
      if (w.restartAtMs !== null && w.restartAtMs <= now) {
        if (!clusterStillExists(layout)) return; // `ferry down` ran: nothing to restart into
        try {
          const pid = await startAgain(opts.env, layout, w.launch);
          w.pid = pid;
          w.startTicks = processStartTicks(pid);
          w.restart = onRestart(w.restart, Date.now());
          w.restartAtMs = null;
          if (w.launch.kind === 'waypoint') await recordWaypointPid(layout.stateDir, w.launch.role, pid);
          if (w.launch.kind === 'sidecar') await recordSidecarPid(layout.stateDir, w.launch.role, pid);
          log.info({ role: w.launch.role, pid, restarts: w.restart.restarts }, 'process restarted');
        } catch (err) {
          // Counted as another exit: the backoff grows, so a start that keeps failing does not spin.
          const again = onExit(onRestart(w.restart, Date.now()), Date.now(), policy);
          w.restart = again.state;
          w.restartAtMs = again.restartAtMs;
          log.error({ role: w.launch.role, error: String(err) }, 'could not restart the process');
        }
        dirty = true;
      }
    }
    if (dirty) {
      if (!clusterStillExists(layout)) return;
      await writeReport(layout.stateDir, watched, rollout).catch((err: unknown) =>
        log.warn({ error: String(err) }, 'could not write supervisor.json'),
      );
      dirty = false;
    }
    await delay(POLL_MS, undefined, { signal: opts.signal }).catch(() => undefined);
  }

  /** Replaces the requested nodes' ztunnels one after the other; stops at the first failure. */
  async function runRollout(request: RolloutRequest, progress: (r: RolloutReport) => void): Promise<RolloutReport> {
    const results: RolloutReport['results'][number][] = [];
    for (const nodeName of request.nodes) {
      const index = config.nodes.findIndex((n) => n.name === nodeName);
      const w = watched.get(`ztunnel-${nodeName}`);
      const fail = (error: string): RolloutReport => {
        results.push({ node: nodeName, oldPid: w?.pid ?? null, pid: null, readyMs: null, oldExitMs: null, error });
        return { id: request.id, phase: 'failed', results };
      };
      if (index < 0 || w === undefined) return fail(`no node ${nodeName}`);
      if (w.restartAtMs !== null || w.pid === null || !isAlive(w)) return fail('its ztunnel is not running');
      w.rolling = true;
      try {
        const oldPid = w.pid;
        const replaced = await replaceZtunnel({
          env: opts.env,
          layout,
          config,
          index,
          oldPid,
          log,
          from: opts.from ?? process.env,
        });
        config = replaced.config;
        const launch = ztunnelLaunch(layout, config, index, opts.from ?? process.env);
        if (launch !== undefined) w.launch = launch;
        w.pid = replaced.pid;
        w.startTicks = processStartTicks(replaced.pid);
        w.restart = onRunning({ ...w.restart, startedAtMs: null }, Date.now());
        results.push({
          node: nodeName,
          oldPid,
          pid: replaced.pid,
          readyMs: replaced.readyMs,
          oldExitMs: replaced.oldExitMs,
          error: null,
        });
        progress({ id: request.id, phase: 'running', results: [...results] });
      } catch (err) {
        log.error({ node: nodeName, error: String(err) }, 'ztunnel replacement failed; the old one keeps serving');
        return fail(err instanceof Error ? err.message : String(err));
      } finally {
        w.rolling = false;
      }
    }
    return { id: request.id, phase: 'done', results };
  }
}

/** The pending rollout request (removed as it is taken), or null. */
function takeRolloutRequest(stateDir: string): RolloutRequest | null {
  const path = join(stateDir, ROLLOUT_REQUEST_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  rmSync(path, { force: true });
  try {
    const v = JSON.parse(text) as RolloutRequest;
    return typeof v.id === 'string' && Array.isArray(v.nodes) ? v : null;
  } catch {
    return null;
  }
}

/** The ztunnels of mesh.json and the waypoints of waypoints.json. */
function launchesOf(opts: SupervisorOptions): SystemLaunch[] {
  const from = opts.from ?? process.env;
  const out: SystemLaunch[] = [];
  for (let i = 0; i < opts.config.nodes.length; i++) {
    const z = ztunnelLaunch(opts.layout, opts.config, i, from);
    if (z !== undefined) out.push(z);
  }
  for (const w of readWaypoints(opts.layout.stateDir)) {
    const l = waypointLaunch(opts.config, w, from);
    if (l !== undefined) out.push(l);
  }
  const dns = dnsLaunch(opts.layout.stateDir);
  if (dns !== undefined) out.push(dns);
  for (const s of readLocalSidecars(opts.layout.stateDir)) {
    const l = sidecarLaunch(opts.config, s);
    if (l !== undefined) out.push(l);
  }
  out.push(...bareLaunches(opts.layout)); // API server, kubelets, kube-controllers of a bare cluster
  return out;
}

/** A system process in `system/<role>`; a sidecar back in its pod's istio-proxy cgroup. */
function startAgain(env: ClusterCliEnv, layout: ClusterLayout, launch: SystemLaunch): Promise<number> {
  if (launch.placement === undefined) {
    return startSystemProcessAgain(env, layout, launch.role, launch.args, launch.env);
  }
  return startInCgroup(
    new StateJournal(layout.stateDir),
    launch.placement.cgroupDir,
    launch.role,
    [...env.ferryArgv, ...launch.args],
    { env: { ...env.baseEnv, ...launch.env }, logFile: launch.placement.logFile },
  );
}

function isAlive(w: Watched): boolean {
  if (w.pid === null) return false;
  if (processStartTicks(w.pid) !== w.startTicks) return false; // gone, or the pid was reused
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${w.pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function clusterStillExists(layout: ClusterLayout): boolean {
  return existsSync(join(layout.stateDir, MESH_FILE)) || existsSync(join(layout.stateDir, BARE_FILE));
}

function readWaypoints(stateDir: string): LocalWaypoint[] {
  try {
    const v = JSON.parse(readFileSync(join(stateDir, WAYPOINTS_FILE), 'utf8')) as unknown;
    return Array.isArray(v) ? (v as LocalWaypoint[]) : [];
  } catch {
    return [];
  }
}

/** waypoints.json names each waypoint's pid (tests and tools read it): keep it current. */
async function recordWaypointPid(stateDir: string, role: string, pid: number): Promise<void> {
  const next = readWaypoints(stateDir).map((w) => (w.role === role ? { ...w, pid } : w));
  await writeAtomic(join(stateDir, WAYPOINTS_FILE), `${JSON.stringify(next, null, 2)}\n`);
}

async function writeReport(
  stateDir: string,
  watched: ReadonlyMap<string, Watched>,
  rollout: RolloutReport | null,
): Promise<void> {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const report: SupervisorReport = {
    pid: process.pid,
    updatedAt: new Date().toISOString(),
    processes: [...watched.values()].map((w) => ({
      role: w.launch.role,
      kind: w.launch.kind,
      pid: w.pid,
      running: w.restartAtMs === null && isAlive(w),
      restarts: w.restart.restarts,
      lastExitAt: iso(w.restart.lastExitAtMs),
      nextStartAt: iso(w.restartAtMs),
    })),
    rollout,
  };
  await writeAtomic(join(stateDir, SUPERVISOR_FILE), `${JSON.stringify(report, null, 2)}\n`);
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, path);
}

/** supervisor.json, or null when no supervisor wrote one. */
export function readSupervisorReport(stateDir: string): SupervisorReport | null {
  try {
    return JSON.parse(readFileSync(join(stateDir, SUPERVISOR_FILE), 'utf8')) as SupervisorReport;
  } catch {
    return null;
  }
}
