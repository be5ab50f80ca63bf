// Waypoints in the local cluster (docs/architecture.md "Local cluster"): each ferry-waypoint Gateway runs as `ferry waypoint`, a
// journaled system process (so `ferry down` removes it, also after kill -9) in the host network namespace,
// with its HBONE listener and upstream sockets in its pod's netns (`--netns`): the pod (netns, veth, IP)
// was created with the others and is not enrolled. It gets config from the controller over xDS and its
// certificate from the CA with the token of its node (the CA lets a node hold the identities of the
// workloads placed on it, and the waypoint's workload is one). Addresses go to waypoints.json for tests
// and tools.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WaypointSpec } from '../controller/translate/types.ts';
import { adminSocketPath, caRootPath, type LocalMeshConfig } from './controller/mesh-files.ts';
import type { ClusterLayout } from './layout.ts';
import { loadState, podsOf } from './state.ts';

export const WAYPOINTS_FILE = 'waypoints.json';

export interface LocalWaypoint {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly ip: string;
  readonly pid: number;
  readonly admin: string;
  readonly metrics: string;
  readonly readiness: string;
  readonly role: string;
  /** `ferry waypoint` arguments (no secrets: the CA token is passed in the environment). */
  readonly args: readonly string[];
}

export interface StartWaypointsOptions {
  readonly layout: ClusterLayout;
  readonly config: LocalMeshConfig;
  readonly waypoints: readonly WaypointSpec[];
  readonly freeAddress: () => Promise<string>;
  readonly startSystemProcess: (
    role: string,
    args: readonly string[],
    env?: Readonly<Record<string, string>>,
  ) => Promise<number>;
  readonly out: (line: string) => void;
}

export async function startLocalWaypoints(opts: StartWaypointsOptions): Promise<LocalWaypoint[]> {
  const pods = podsOf(loadState(opts.layout.stateDir));
  const started: LocalWaypoint[] = [];
  for (const w of opts.waypoints) {
    const pod = pods.find((p) => `${p.namespace}/${p.name}` === w.podKey);
    if (pod === undefined) {
      opts.out(`  waypoint ${w.namespace}/${w.name}: its pod was not created; not started`);
      continue;
    }
    const node = opts.config.nodes[pod.node];
    if (node === undefined) continue;
    const [admin, metrics, readiness] = [await opts.freeAddress(), await opts.freeAddress(), await opts.freeAddress()];
    const role = `waypoint-${w.namespace}-${w.name}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
    const args = [
      'waypoint',
      '--waypoint',
      `${w.namespace}/${w.name}`,
      '--node',
      node.name,
      '--trust-domain',
      opts.config.trustDomain,
      '--xds-address',
      opts.config.controller.xds,
      '--ca-address',
      opts.config.controller.ca,
      '--ca-root',
      caRootPath(opts.layout.stateDir),
      '--netns',
      pod.netnsPath,
      '--listen',
      `${pod.ip}:15008`,
      '--admin',
      admin,
      '--admin-socket',
      adminSocketPath(opts.layout.stateDir, role),
      '--metrics',
      metrics,
      '--readiness',
      readiness,
      // A development cluster logs every request (as Istio's demo profile does); the process default is
      // off. FERRY_WAYPOINT_ACCESS_LOG=off given to `ferry up` keeps it off (the waypoint benchmark's A/B).
      '--access-log',
      process.env.FERRY_WAYPOINT_ACCESS_LOG ?? 'on',
    ];
    const pid = await opts.startSystemProcess(role, args, {
      FERRY_CA_TOKEN: node.token,
      // Profiling and GC tuning of waypoints only (e.g. --cpu-prof, --max-semi-space-size=16).
      ...(process.env.FERRY_WAYPOINT_NODE_OPTIONS === undefined
        ? {}
        : { NODE_OPTIONS: process.env.FERRY_WAYPOINT_NODE_OPTIONS }),
      ...(process.env.FERRY_WAYPOINT_HTTP1_CLIENT === undefined
        ? {}
        : { FERRY_WAYPOINT_HTTP1_CLIENT: process.env.FERRY_WAYPOINT_HTTP1_CLIENT }),
    });
    opts.out(`starting ${role} (pod ${pod.ip}, admin ${admin})`);
    started.push({
      namespace: w.namespace,
      name: w.name,
      node: node.name,
      ip: pod.ip,
      pid,
      admin,
      metrics,
      readiness,
      role,
      args,
    });
  }
  await writeFile(join(opts.layout.stateDir, WAYPOINTS_FILE), `${JSON.stringify(started, null, 2)}\n`);
  return started;
}

/** The waypoints `ferry up` started (waypoints.json), or [] when there are none. */
export async function readLocalWaypoints(stateDir: string): Promise<LocalWaypoint[]> {
  try {
    return JSON.parse(await readFile(join(stateDir, WAYPOINTS_FILE), 'utf8')) as LocalWaypoint[];
  } catch {
    return [];
  }
}

/** Starts again every waypoint whose process is gone (same arguments, its node's CA token). */
export async function restartDeadWaypoints(
  stateDir: string,
  config: LocalMeshConfig,
  alive: (role: string) => boolean,
  startSystemProcess: StartWaypointsOptions['startSystemProcess'],
): Promise<LocalWaypoint[]> {
  const waypoints = await readLocalWaypoints(stateDir);
  const restarted: LocalWaypoint[] = [];
  const next: LocalWaypoint[] = [];
  for (const w of waypoints) {
    const token = config.nodes.find((n) => n.name === w.node)?.token;
    if (alive(w.role) || !Array.isArray(w.args) || token === undefined) {
      next.push(w);
      continue;
    }
    const pid = await startSystemProcess(w.role, w.args, { FERRY_CA_TOKEN: token });
    next.push({ ...w, pid });
    restarted.push({ ...w, pid });
  }
  if (restarted.length > 0) await writeFile(join(stateDir, WAYPOINTS_FILE), `${JSON.stringify(next, null, 2)}\n`);
  return restarted;
}
