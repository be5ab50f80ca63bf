// Replacing a node's ztunnel without failing a connection (`ferry rollout restart ztunnel`, carried out by
// the supervisor; docs/operations.md "Replacing a ztunnel"). The datapath does the hard part
// (docs/redirect.md "Failure behaviour"): the pins outlive the process, a new ztunnel re-enrolls the pods of
// the node's state file and re-registers their listeners, and from then on every new connection of those
// pods goes to it while the old process only finishes what it has. Here: start the new process beside the
// old one (own admin/metrics/readiness ports, its admin socket at a temporary path), wait until it is ready
// (config synced, pods re-enrolled), SIGTERM the old one (it drains its live connections), and once it is
// gone move the new admin socket to the usual path and the new ports into mesh.json.
import { readFileSync, renameSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../runtime/logger.ts';
import type { ClusterCliEnv } from './cli-env.ts';
import { adminSocketPath, type LocalMeshConfig, writeMeshConfig } from './controller/mesh-files.ts';
import { killPid, processStartTicks } from './host.ts';
import type { ClusterLayout } from './layout.ts';
import { freePorts } from './ports.ts';
import { startSystemProcessAgain } from './restart.ts';
import { ztunnelLaunch } from './system-processes.ts';

/** How long the old process may take to drain and exit after SIGTERM before it is killed. */
const OLD_EXIT_LIMIT_MS = 20_000;
const READY_LIMIT_MS = 60_000;

export interface ReplaceZtunnelOptions {
  readonly env: ClusterCliEnv;
  readonly layout: ClusterLayout;
  readonly config: LocalMeshConfig;
  readonly index: number;
  /** The running ztunnel to replace. */
  readonly oldPid: number;
  readonly log: Logger;
  readonly from?: NodeJS.ProcessEnv;
}

export interface ZtunnelReplaced {
  readonly pid: number;
  /** mesh.json with the node's new addresses (already written). */
  readonly config: LocalMeshConfig;
  readonly readyMs: number;
  readonly oldExitMs: number;
}

/** Carries out one replacement; on failure the new process is killed and the old one keeps serving. */
export async function replaceZtunnel(opts: ReplaceZtunnelOptions): Promise<ZtunnelReplaced> {
  const { layout, config, index, log } = opts;
  const node = config.nodes[index];
  if (node === undefined) throw new Error(`no node ${index} in mesh.json`);
  const role = `ztunnel-${node.name}`;
  const [admin, metrics, readiness] = (await freePorts(3)).map((p) => `127.0.0.1:${p}`);
  if (admin === undefined || metrics === undefined || readiness === undefined) throw new Error('no free ports');
  const next: LocalMeshConfig = {
    ...config,
    nodes: config.nodes.map((n, i) => (i === index ? { ...n, admin, metrics, readiness } : n)),
  };
  const socket = adminSocketPath(layout.stateDir, role);
  // A name of its own: a process removes the path it bound when it exits, even after the path was renamed
  // to the usual one (that is why the usual path moves only after the old process is gone).
  const tempSocket = adminSocketPath(layout.stateDir, `${role}-${Date.now().toString(36)}`);
  const launch = ztunnelLaunch(layout, next, index, opts.from ?? process.env, tempSocket);
  if (launch === undefined) throw new Error(`no launch for node ${index}`);
  const started = Date.now();
  const pid = await startSystemProcessAgain(opts.env, layout, role, launch.args, launch.env);
  const startTicks = processStartTicks(pid);
  log.info({ role, pid, oldPid: opts.oldPid, admin, readiness }, 'replacement ztunnel started beside the old one');
  try {
    for (;;) {
      if (processStartTicks(pid) !== startTicks || isZombie(pid)) throw new Error('the new ztunnel exited');
      if (await isReady(readiness)) break;
      if (Date.now() - started > READY_LIMIT_MS) throw new Error(`the new ztunnel not ready in ${READY_LIMIT_MS} ms`);
      await delay(50);
    }
  } catch (err) {
    killPid(pid);
    throw err;
  }
  const readyMs = Date.now() - started;
  // The new process serves every pod now; the old one finishes its live connections and exits.
  const oldTicks = processStartTicks(opts.oldPid);
  const stopping = Date.now();
  if (oldTicks !== null) process.kill(opts.oldPid, 'SIGTERM');
  while (processStartTicks(opts.oldPid) === oldTicks && oldTicks !== null && !isZombie(opts.oldPid)) {
    if (Date.now() - stopping > OLD_EXIT_LIMIT_MS) {
      log.warn({ role, pid: opts.oldPid }, 'the old ztunnel did not exit after its drain: killing it');
      killPid(opts.oldPid);
    }
    await delay(50);
  }
  const oldExitMs = Date.now() - stopping;
  // Only now: the old process removes its socket path when it closes, which must not be the new one's.
  // From here on the new process serves: a failure is logged, never undone.
  try {
    renameSync(tempSocket, socket);
  } catch (err) {
    log.error({ role, socket, tempSocket, error: String(err) }, 'could not move the new admin socket into place');
  }
  await writeMeshConfig(layout.stateDir, next).catch((err: unknown) => {
    log.error({ role, error: String(err) }, 'could not write the new addresses to mesh.json');
  });
  log.info({ role, pid, readyMs, oldExitMs }, 'ztunnel replaced');
  return { pid, config: next, readyMs, oldExitMs };
}

async function isReady(address: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${address}/healthz/ready`, { signal: AbortSignal.timeout(1_000) });
    await res.text();
    return res.ok;
  } catch {
    return false;
  }
}

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}
