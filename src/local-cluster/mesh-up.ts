// `ferry up -f <manifests>`: the whole local mesh in one command (docs/architecture.md "Local cluster"). Checks the host, parses
// the manifests (diagnostics printed with file and object; any error refuses before anything is created),
// creates the pods with the runtime (createCluster), writes mesh.json (addresses, per-node CA tokens),
// starts the controller and one ztunnel per node as journaled system processes (so `ferry down` removes
// them, also after kill -9), and waits until every ztunnel is ready and every enrolled pod is enrolled;
// then it starts the supervisor (supervisor.ts), which restarts dead ztunnels and waypoints from then on.
// A second `up` on a running cluster changes nothing and says so, except that it restarts a dead
// controller, and a dead supervisor (with the waypoints that died while it was not running).
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { ManifestSource } from '../controller/sources/manifest-source.ts';
import { type ClusterState, formatDiagnostic } from '../controller/sources/types.ts';
import { listPods, listWaypoints } from '../controller/translate/translate.ts';
import type { ClusterCliEnv } from './cli-env.ts';
import { checkHost, createCluster, requireCgroup2, requireRoot } from './cluster.ts';
import type { MeshStatus } from './controller/admin-api.ts';
import { LocalControllerError } from './controller/errors.ts';
import {
  type LocalMeshConfig,
  MESH_FILE,
  newNodeToken,
  readMeshConfig,
  writeMeshConfig,
} from './controller/mesh-files.ts';
import { STATE_FILE } from './controller/state-store.ts';
import { controllerRequest } from './controller-client.ts';
import { DNS_ROLE, dnsArgs, writeDnsFile } from './dns/dns-file.ts';
import { type ClusterLayout, clusterLayout, NETNS_DIR, nodeCgroupDir, nodeName } from './layout.ts';
import { clusterSpecFromPods } from './manifest-spec.ts';
import { freePorts } from './ports.ts';
import { CONTROLLER_ROLE, startController, startSystemProcessAgain, systemProcessAlive } from './restart.ts';
import { startLocalSidecars } from './sidecars.ts';
import { loadState } from './state.ts';
import { SUPERVISOR_ROLE } from './supervisor.ts';
import { tuningEnv, ztunnelLaunch } from './system-processes.ts';
import { waitReady } from './wait-ready.ts';
import { type LocalWaypoint, restartDeadWaypoints, startLocalWaypoints } from './waypoints.ts';

export interface MeshUpOptions {
  readonly cluster: string;
  readonly nodes: number;
  readonly paths: readonly string[];
  readonly trustDomain: string;
  readonly out: (line: string) => void;
}

const READY_TIMEOUT_MS = 120_000;

export async function meshUp(env: ClusterCliEnv, opts: MeshUpOptions): Promise<number> {
  const out = opts.out;
  requireRoot();
  const layout = clusterLayout(opts.cluster, { stateRoot: env.stateRoot, cgroup2Root: requireCgroup2() });
  if (
    loadState(layout.stateDir).records.some((r) => r.kind === 'ready') &&
    existsSync(join(layout.stateDir, MESH_FILE))
  ) {
    if (!systemProcessAlive(layout, CONTROLLER_ROLE)) {
      // A crashed or killed controller: start it again; the ztunnels reconnect (xDS) and converge.
      out(`cluster ${opts.cluster} is up but its controller is not running: restarting it`);
      const pid = await startController(env, layout);
      await until('controller ready', layout.logDir, 'controller', pid, async () => {
        const s = (await controllerRequest(layout.stateDir, 'GET', '/status', undefined, 2_000)) as MeshStatus;
        return s.nodes.every((n) => n.xdsConnected && n.enrollmentConverged) ? s : false;
      });
      out(`controller restarted (pid ${pid}); every ztunnel reconnected`);
      await ensureSupervisor(env, layout, out);
      return 0;
    }
    if (systemProcessAlive(layout, SUPERVISOR_ROLE)) {
      out(`cluster ${opts.cluster} is already up: nothing changed`);
      out(`  change it with: ferry apply -f <manifests> --cluster ${opts.cluster}`);
      out(`  see it with:    ferry status --cluster ${opts.cluster}`);
      out(`  remove it with: ferry down --cluster ${opts.cluster}`);
      return 0;
    }
    // Without a supervisor nobody restarted dead waypoints: do it here, then start the supervisor again
    // (it restarts dead ztunnels within its first poll).
    const restarted = await restartDeadWaypoints(
      layout.stateDir,
      await readMeshConfig(layout.stateDir),
      (role) => systemProcessAlive(layout, role),
      (role, args, extraEnv) => startSystemProcessAgain(env, layout, role, args, extraEnv ?? {}),
    );
    if (restarted.length > 0) {
      for (const w of restarted) await waitWaypointReady(layout.logDir, w);
      out(
        `cluster ${opts.cluster} is up; restarted waypoint(s) that were not running: ${restarted.map((w) => w.role).join(', ')}`,
      );
    }
    await ensureSupervisor(env, layout, out);
    return 0;
  }
  checkHost(layout, env.baseEnv.PATH ?? '', out);

  const paths = opts.paths.map((p) => resolve(p));
  out(`reading manifests: ${paths.join(', ')}`);
  const state = await readManifests(paths, out);
  const pods = listPods(state, { injectSidecars: true }); // the same injection as the controller's
  if (pods.length === 0) out('warning: the manifests define no pods');
  const spec = clusterSpecFromPods(opts.cluster, opts.nodes, pods);

  out(`creating cluster ${opts.cluster} (${opts.nodes} nodes, ${pods.length} pods)`);
  const cluster = await createCluster(spec, {
    stateRoot: env.stateRoot,
    ferryArgv: env.ferryArgv,
    baseEnv: env.baseEnv,
    signal: AbortSignal.timeout(300_000),
    progress: (line) => out(`  ${line}`),
  });
  const nodes = Array.from({ length: opts.nodes }, (_, i) => i);
  // The node ztunnels pin below it; their feature probe wants the parent on bpffs (journaled by createCluster).
  mkdirSync(layout.pinRoot, { recursive: true });
  const ports = await freePorts(3 + 3 * opts.nodes);
  const addr = () => `127.0.0.1:${ports.shift()}`;
  const config: LocalMeshConfig = {
    cluster: opts.cluster,
    trustDomain: opts.trustDomain,
    manifests: paths,
    controller: { xds: addr(), ca: addr(), admin: addr() },
    nodes: nodes.map((i) => ({
      name: nodeName(i),
      admin: addr(),
      metrics: addr(),
      readiness: addr(),
      token: newNodeToken(),
    })),
  };
  // A new cluster starts from its -f manifests: never from a controller state some earlier cluster of this
  // name left behind (a restart of *this* cluster's controller is the branch above and keeps it).
  rmSync(join(layout.stateDir, STATE_FILE), { force: true });
  await writeMeshConfig(layout.stateDir, config);

  out(`starting controller (xDS ${config.controller.xds} plaintext on loopback, CA ${config.controller.ca})`);
  const controllerPid = await cluster.startSystemProcess(CONTROLLER_ROLE, ['controller', '--cluster', opts.cluster]);
  await until('controller ready', layout.logDir, 'controller', controllerPid, async () => {
    await controllerRequest(layout.stateDir, 'GET', '/status', undefined, 2_000);
    return true;
  });

  // Cluster DNS: a client of the controller's xDS like a node agent; started now so that it starts up
  // while the ztunnels do, waited for after them (docs/architecture.md, "Cluster DNS").
  const dnsSpec = {
    address: cluster.gateway,
    netnsPath: join(NETNS_DIR, layout.bridgeNetns),
    readiness: `127.0.0.1:${(await freePorts(1))[0]}`,
  };
  const dns = { ...dnsSpec, args: dnsArgs(opts.cluster, dnsSpec) };
  await writeDnsFile(layout.stateDir, dns); // the supervisor restarts it from this file
  out(`starting cluster DNS on ${dns.address}:53 (bridge netns), forwarding other names to /etc/resolv.conf`);
  const dnsPid = await cluster.startSystemProcess(DNS_ROLE, dns.args);

  const ztunnelPids: number[] = [];
  for (const i of nodes) {
    const node = config.nodes[i];
    if (node === undefined) continue;
    const cgroupRoot = nodeCgroupDir(layout, i);
    cluster.journal.record({ kind: 'cgroup', path: cgroupRoot });
    mkdirSync(cgroupRoot, { recursive: true }); // a node without pods still gets its attach point
    const launch = ztunnelLaunch(layout, config, i);
    if (launch === undefined) continue;
    out(`starting ${launch.role} (admin ${node.admin})`);
    const pid = await cluster.startSystemProcess(launch.role, launch.args, launch.env);
    ztunnelPids.push(pid);
  }
  for (const [i, node] of config.nodes.entries()) {
    await until(`ztunnel-${node.name} ready`, layout.logDir, `ztunnel-${node.name}`, ztunnelPids[i] ?? 0, async () => {
      const res = await fetch(`http://${node.readiness}/healthz/ready`, { signal: AbortSignal.timeout(2_000) });
      await res.text();
      return res.ok;
    });
    out(`  ztunnel-${node.name} ready`);
  }
  await until('cluster DNS ready', layout.logDir, DNS_ROLE, dnsPid, async () => {
    const res = await fetch(`http://${dns.readiness}/healthz/ready`, { signal: AbortSignal.timeout(2_000) });
    await res.text();
    return res.ok;
  });
  out('  cluster DNS ready');
  const waypoints = await startLocalWaypoints({
    layout,
    config,
    waypoints: listWaypoints(state),
    freeAddress: async () => `127.0.0.1:${(await freePorts(1))[0]}`,
    startSystemProcess: (role, args, env) => cluster.startSystemProcess(role, args, env),
    out,
  });
  for (const w of waypoints) {
    await waitWaypointReady(layout.logDir, w);
    out(`  ${w.role} ready`);
  }
  const sidecars = await startLocalSidecars({
    layout,
    journal: cluster.journal,
    config,
    pods: cluster.pods
      .filter((p) => p.sidecar)
      .map((p) => ({ ...p, appCgroups: p.containers.map((c) => c.cgroupDir) })),
    ferryArgv: env.ferryArgv,
    baseEnv: env.baseEnv,
    freeAddress: async () => `127.0.0.1:${(await freePorts(1))[0]}`,
    out,
  });
  for (const s of sidecars) {
    await until(`sidecar of ${s.namespace}/${s.name} ready`, layout.logDir, basename(s.logFile, '.log'), s.pid, () =>
      readyAt(s.readiness),
    );
    out(`  sidecar of ${s.namespace}/${s.name} ready`);
  }
  const status = await until('pods enrolled', layout.logDir, 'controller', controllerPid, async () => {
    const s = (await controllerRequest(layout.stateDir, 'GET', '/status', undefined, 5_000)) as MeshStatus;
    const done = s.nodes.every((n) => n.enrollmentConverged) && s.pods.every((p) => p.meshed === p.enrolled);
    return done ? s : false;
  });
  cluster.markReady();
  // From now on a dead ztunnel or waypoint is restarted without anyone running `ferry up` again.
  const supervisorPid = await cluster.startSystemProcess(
    SUPERVISOR_ROLE,
    ['supervise', '--cluster', opts.cluster],
    tuningEnv(process.env),
  );
  out(`started the supervisor (pid ${supervisorPid}): dead ztunnels, waypoints and DNS are restarted`);
  out(
    `cluster ${opts.cluster} is up; logs: ferry logs <controller|ztunnel-node-N|ns_pod_container> --cluster ${opts.cluster}`,
  );
  printSummary(status, out);
  return 0;
}

async function readManifests(paths: readonly string[], out: (line: string) => void): Promise<ClusterState> {
  let errors = 0;
  const source = new ManifestSource({
    paths,
    onDiagnostics: (list) => {
      for (const d of list) {
        if (d.severity === 'error') errors++;
        out(`  ${formatDiagnostic(d)}`);
      }
    },
  });
  let state: ClusterState | null = null;
  await source.start((s) => {
    state = s;
  });
  await source.close();
  if (errors > 0) {
    // Refused before anything exists: a mesh built from half the manifests (or none, after a YAML syntax
    // error) is worse than no mesh; `ferry apply` is all or nothing the same way.
    throw new LocalControllerError(
      'FERRY_LOCAL_BAD_MANIFESTS',
      `${errors} error(s) in the manifests (listed above); nothing was created: fix them and run ferry up again`,
    );
  }
  if (state === null) throw new Error('unreachable: manifest source delivered no state');
  return state;
}

/** Waits for `check` (wait-ready.ts), failing at once when `pid` died, or after READY_TIMEOUT_MS. */
function until<T>(what: string, logDir: string, log: string, pid: number, check: () => Promise<T | false>): Promise<T> {
  return waitReady({ what, pid, logDir, log, deadline: Date.now() + READY_TIMEOUT_MS, check });
}

export function printSummary(s: MeshStatus, out: (line: string) => void): void {
  out('pods:');
  for (const p of s.pods) {
    const mesh = p.waypoint
      ? `waypoint  ${p.identity ?? ''}`
      : p.sidecar
        ? `sidecar   ${p.identity ?? ''}`
        : p.enrolled
          ? `enrolled  ${p.identity ?? ''}`
          : p.meshed
            ? 'enrolling'
            : 'not in mesh';
    out(`  ${`${p.namespace}/${p.name}`.padEnd(32)} ${p.node.padEnd(8)} ${p.ip.padEnd(14)} ${mesh}`);
  }
  if (s.pendingPods.length > 0) out(`  not created (run ferry down/up): ${s.pendingPods.join(', ')}`);
  out('services:');
  for (const svc of s.services) {
    out(`  ${`${svc.namespace}/${svc.name}`.padEnd(32)} ${(svc.vip ?? 'headless').padEnd(14)} ${svc.ports.join(' ')}`);
  }
}

async function readyAt(address: string): Promise<boolean> {
  const res = await fetch(`http://${address}/healthz/ready`, { signal: AbortSignal.timeout(2_000) });
  await res.text();
  return res.ok;
}

function waitWaypointReady(logDir: string, w: LocalWaypoint): Promise<boolean> {
  return until(`${w.role} ready`, logDir, w.role, w.pid, async () => {
    const res = await fetch(`http://${w.readiness}/healthz/ready`, { signal: AbortSignal.timeout(2_000) });
    await res.text();
    return res.ok;
  });
}

/** Starts the supervisor again when it is not running (a cluster from before it, or it was killed). */
async function ensureSupervisor(env: ClusterCliEnv, layout: ClusterLayout, out: (line: string) => void): Promise<void> {
  if (systemProcessAlive(layout, SUPERVISOR_ROLE)) return;
  const pid = await startSystemProcessAgain(
    env,
    layout,
    SUPERVISOR_ROLE,
    ['supervise', '--cluster', layout.name],
    tuningEnv(process.env),
  );
  out(`the supervisor was not running: started it (pid ${pid}); it restarts dead ztunnels and waypoints`);
}
