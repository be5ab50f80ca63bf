// Restarting a dead controller of a running local cluster: `ferry up` on a cluster that is already up checks
// the journaled controller process and, when it is gone (crash, kill -9), starts it again with the same
// mesh.json (same xDS/CA/admin addresses, same CA root, persisted VIPs and labels), so the node ztunnels
// reconnect to it and converge. The ztunnels kept serving with their last config meanwhile.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterCliEnv } from './cli-env.ts';
import { processStartTicks } from './host.ts';
import type { ClusterLayout } from './layout.ts';
import { startInCgroup } from './pods.ts';
import { loadState, StateJournal } from './state.ts';

export const CONTROLLER_ROLE = 'controller';

/** True when the newest journaled process of `role` still runs (same pid and start time: no pid reuse). */
export function systemProcessAlive(layout: Pick<ClusterLayout, 'stateDir'>, role: string): boolean {
  const procs = loadState(layout.stateDir).records.filter((r) => r.kind === 'process' && r.role === role);
  const last = procs.at(-1);
  if (last === undefined || last.kind !== 'process') return false;
  return processStartTicks(last.pid) === last.startTicks && !isZombie(last.pid);
}

/** The pid of the newest journaled process of `role` when it still runs, else null. */
export function runningPid(layout: Pick<ClusterLayout, 'stateDir'>, role: string): number | null {
  const last = loadState(layout.stateDir)
    .records.filter((r) => r.kind === 'process' && r.role === role)
    .at(-1);
  if (last === undefined || last.kind !== 'process') return null;
  return processStartTicks(last.pid) === last.startTicks && !isZombie(last.pid) ? last.pid : null;
}

/** Starts the controller again in `system/controller` (journaled, so `ferry down` removes it); its pid. */
export function startController(env: ClusterCliEnv, layout: ClusterLayout): Promise<number> {
  return startInCgroup(
    new StateJournal(layout.stateDir),
    join(layout.systemCgroupDir, CONTROLLER_ROLE),
    CONTROLLER_ROLE,
    [...env.ferryArgv, 'controller', '--cluster', layout.name],
    { env: { ...env.baseEnv }, logFile: join(layout.logDir, `${CONTROLLER_ROLE}.log`) },
  );
}

/** Starts a system process again (a waypoint), journaled like the first start; its pid. */
export function startSystemProcessAgain(
  env: ClusterCliEnv,
  layout: ClusterLayout,
  role: string,
  args: readonly string[],
  extraEnv: Readonly<Record<string, string>>,
): Promise<number> {
  return startInCgroup(
    new StateJournal(layout.stateDir),
    join(layout.systemCgroupDir, role),
    role,
    [...env.ferryArgv, ...args],
    { env: { ...env.baseEnv, ...extraEnv }, logFile: join(layout.logDir, `${role}.log`) },
  );
}

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}
