// Sidecars in the local cluster (docs/architecture.md "Sidecar mode"): every pod the injector gave an
// `istio-proxy` container (src/mesh/sidecar-injection.ts) runs `ferry ztunnel --sidecar` as that container:
// a process in the pod's `istio-proxy` cgroup (so `ferry down` and the pod's teardown take it along), in
// the host netns like the local waypoints (the controller's xDS and CA listen on the host's loopback, which
// pods cannot reach), with every data-path socket in the pod's netns. It gets config over xDS, a
// certificate for its pod's identity only (with its node's CA token), its own pin root, and captures the
// pod's app containers. Started after the node ztunnels; sidecars.json lists them for tests and tools.
import { readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DEFAULT_TRANSLATE_SETTINGS } from '../controller/translate/types.ts';
import { SIDECAR_CONTAINER } from '../mesh/sidecar-injection.ts';
import { adminSocketPath, caRootPath, type LocalMeshConfig } from './controller/mesh-files.ts';
import type { ClusterLayout } from './layout.ts';
import { startInCgroup } from './pods.ts';
import type { StateJournal, StateRecord } from './state.ts';

export const SIDECARS_FILE = 'sidecars.json';

/** A pod of the runtime that has a sidecar: its paths and its app containers' cgroups. */
export interface SidecarPod {
  readonly namespace: string;
  readonly name: string;
  readonly node: number;
  readonly ip: string;
  readonly netnsPath: string;
  readonly cgroupDir: string;
  readonly appCgroups: readonly string[];
}

export interface LocalSidecar {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly ip: string;
  readonly pid: number;
  /** The role its process is journaled (and supervised) as: `<ns>/<pod>/istio-proxy`. */
  readonly role: string;
  /** Its container cgroup: `<pod cgroup>/istio-proxy`. */
  readonly cgroupDir: string;
  readonly uid: string;
  readonly admin: string;
  readonly metrics: string;
  readonly readiness: string;
  readonly pinRoot: string;
  readonly logFile: string;
  /** `ferry` arguments (no secrets: the CA token is passed in the environment). */
  readonly args: readonly string[];
}

export interface StartSidecarsOptions {
  readonly layout: ClusterLayout;
  readonly journal: StateJournal;
  readonly config: LocalMeshConfig;
  readonly pods: readonly SidecarPod[];
  readonly ferryArgv: readonly [string, ...string[]];
  readonly baseEnv: Readonly<Record<string, string>>;
  readonly freeAddress: () => Promise<string>;
  readonly out: (line: string) => void;
}

/** The sidecar's pins, below the cluster's pin root (removed by `ferry down` with it). */
export function sidecarPinRoot(layout: ClusterLayout, namespace: string, pod: string): string {
  return join(layout.pinRoot, `sidecar_${namespace}_${pod}`);
}

/** The sidecar's admin socket (0600, in the state dir): where its pod can be unenrolled. */
export function sidecarAdminSocket(stateDir: string, namespace: string, pod: string): string {
  return adminSocketPath(stateDir, `sidecar-${namespace}-${pod}`);
}

export async function startLocalSidecars(opts: StartSidecarsOptions): Promise<LocalSidecar[]> {
  const started: LocalSidecar[] = [];
  for (const pod of opts.pods) {
    const node = opts.config.nodes[pod.node];
    if (node === undefined) continue;
    if (pod.appCgroups.length === 0) {
      opts.out(`  sidecar of ${pod.namespace}/${pod.name}: the pod has no app container to capture; not started`);
      continue;
    }
    const [admin, metrics, readiness] = [await opts.freeAddress(), await opts.freeAddress(), await opts.freeAddress()];
    const uid = `${DEFAULT_TRANSLATE_SETTINGS.clusterId}//Pod/${pod.namespace}/${pod.name}`;
    const pinRoot = sidecarPinRoot(opts.layout, pod.namespace, pod.name);
    opts.journal.record({ kind: 'pin-root', path: pinRoot });
    const args = [
      'ztunnel',
      '--sidecar',
      uid,
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
      '--cgroup-root',
      pod.cgroupDir,
      ...pod.appCgroups.flatMap((c) => ['--app-cgroup', c]),
      '--pin-root',
      pinRoot,
      // Root only: `ferry migrate namespace` unenrolls the pod here before it stops the sidecar.
      '--admin-socket',
      sidecarAdminSocket(opts.layout.stateDir, pod.namespace, pod.name),
      '--admin',
      admin,
      '--metrics',
      metrics,
      '--readiness',
      readiness,
    ];
    const logFile = join(opts.layout.logDir, `${pod.namespace}_${pod.name}_${SIDECAR_CONTAINER}.log`);
    const role = `${pod.namespace}/${pod.name}/${SIDECAR_CONTAINER}`;
    const cgroupDir = join(pod.cgroupDir, SIDECAR_CONTAINER);
    const pid = await startInCgroup(opts.journal, cgroupDir, role, [...opts.ferryArgv, ...args], {
      env: { ...opts.baseEnv, FERRY_CA_TOKEN: node.token },
      logFile,
    });
    opts.out(`starting sidecar of ${pod.namespace}/${pod.name} (pod ${pod.ip}, pid ${pid}, admin ${admin})`);
    started.push({
      namespace: pod.namespace,
      name: pod.name,
      node: node.name,
      ip: pod.ip,
      pid,
      role,
      cgroupDir,
      uid,
      admin,
      metrics,
      readiness,
      pinRoot,
      logFile,
      args,
    });
  }
  await writeFile(join(opts.layout.stateDir, SIDECARS_FILE), `${JSON.stringify(started, null, 2)}\n`);
  return started;
}

/** The sidecars `ferry up` started (sidecars.json), or [] when there are none. */
export function readLocalSidecars(stateDir: string): LocalSidecar[] {
  try {
    const v = JSON.parse(readFileSync(join(stateDir, SIDECARS_FILE), 'utf8')) as unknown;
    return Array.isArray(v) ? (v as LocalSidecar[]) : [];
  } catch {
    return [];
  }
}

/** sidecars.json names each sidecar's pid (tests and tools read it): the supervisor keeps it current. */
export async function recordSidecarPid(stateDir: string, role: string, pid: number): Promise<void> {
  const next = readLocalSidecars(stateDir).map((s) => (s.role === role ? { ...s, pid } : s));
  const file = join(stateDir, SIDECARS_FILE);
  await writeFile(`${file}.tmp`, `${JSON.stringify(next, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

/**
 * Where `ferry exec` runs in a pod: its own cgroup, except in a pod with a sidecar, whose capture covers
 * only the app containers: there the first app container's (kubectl's default container, which Istio's
 * injector points at the app too). Container cgroups are journaled in spec order (pods.ts).
 */
export function execCgroupDir(records: readonly StateRecord[], pod: { readonly cgroupDir: string }): string {
  const children = records
    .filter((r): r is Extract<StateRecord, { kind: 'cgroup' }> => r.kind === 'cgroup')
    .map((r) => r.path)
    .filter((p) => dirname(p) === pod.cgroupDir);
  if (!children.includes(join(pod.cgroupDir, SIDECAR_CONTAINER))) return pod.cgroupDir;
  return children.find((p) => basename(p) !== SIDECAR_CONTAINER) ?? pod.cgroupDir;
}
