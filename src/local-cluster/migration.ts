// The local cluster's side of `ferry migrate namespace|rollback` (docs/migration.md "Moving a namespace"):
// carries out one step of the plan (src/migrate/namespace-plan.ts) on a running cluster, live, and records
// the pod's new phase (migration-state.ts) only once the step holds. Every step is idempotent: run twice,
// it finds its work done and only waits for the controller to report it.
//   enroll-node    phase handover → the controller enrolls the pod in its node ztunnel under the sidecar
//   stop-sidecar   supervision off, the sidecar unenrolls its pod (the node's capture applies from here),
//                  SIGTERM (it drains), its pins removed, phase ambient (a plain pod of an ambient namespace)
//   start-sidecar  phase handover (translated with istio-proxy again), the sidecar started from the launch
//                  kept when it was stopped, supervised again, ready (it enrolls its pod over the node's)
//   unenroll-node  phase sidecar → the controller unenrolls the pod from its node
// Each phase change reaches the controller as a namespace label change (`ferry.dev/migration`), which makes
// it translate again and re-read the phases.
import { existsSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { uninstallPins } from '../redirect-bpf/index.ts';
import { adminSocketRequest } from '../runtime/admin-socket.ts';
import type { ClusterCliEnv } from './cli-env.ts';
import type { MeshStatus, PodStatus } from './controller/admin-api.ts';
import { adminSocketPath, MESH_FILE, readMeshConfig } from './controller/mesh-files.ts';
import { controllerRequest } from './controller-client.ts';
import { ClusterError } from './errors.ts';
import { type PodMigrationPhase, podPhase, readMigrationPhases, recordPodPhase } from './migration-state.ts';
import { startInCgroup } from './pods.ts';
import { type LocalSidecar, readLocalSidecars, SIDECARS_FILE, sidecarAdminSocket } from './sidecars.ts';
import { loadState, podsOf, StateJournal } from './state.ts';
import { readSupervisorReport } from './supervisor.ts';

/** Sidecars `ferry migrate` stopped, kept for `rollback` (their launch: args, cgroup, log file). */
export const STOPPED_SIDECARS_FILE = 'migration-sidecars.json';
/** The namespace label whose change makes the controller re-read the phases; its value is the direction. */
export const MIGRATION_LABEL = 'ferry.dev/migration';

export type LiveStep =
  | { readonly kind: 'label'; readonly changes: Readonly<Record<string, string | null>> }
  | { readonly kind: 'enroll-node' | 'stop-sidecar' | 'start-sidecar' | 'unenroll-node'; readonly pod: string };

export interface MigrationContext {
  readonly stateDir: string;
  readonly env: ClusterCliEnv;
  readonly namespace: string;
  readonly direction: 'forward' | 'rollback';
  /** How long one step may wait for the controller, the supervisor or a sidecar. */
  readonly stepTimeoutMs: number;
}

export interface NamespaceSnapshot {
  readonly pods: readonly { readonly name: string; readonly injected: boolean; readonly phase: PodMigrationPhase }[];
  readonly labels: Readonly<Record<string, string>>;
}

/** The namespace's pods (journal + phases) and labels (read back from the controller with the marker set). */
export async function readNamespaceForMigration(ctx: MigrationContext): Promise<NamespaceSnapshot> {
  if (!existsSync(join(ctx.stateDir, MESH_FILE))) {
    throw new ClusterError(
      'FERRY_CLUSTER_NOT_FOUND',
      `no local cluster at ${ctx.stateDir} (ferry up -f …, or --cluster)`,
    );
  }
  const phases = readMigrationPhases(ctx.stateDir);
  const pods = podsOf(loadState(ctx.stateDir))
    .filter((p) => p.namespace === ctx.namespace)
    .map((p) => ({ name: p.name, injected: p.sidecar === true, phase: podPhase(phases, p) }));
  if (pods.length === 0) {
    throw new ClusterError('FERRY_CLUSTER_POD_NOT_FOUND', `the cluster has no pod in namespace ${ctx.namespace}`);
  }
  return { pods, labels: await relabel(ctx, {}) };
}

/** Runs one step; resolves once it holds (the controller reports it). */
export async function runLiveStep(ctx: MigrationContext, step: LiveStep): Promise<void> {
  switch (step.kind) {
    case 'label':
      await relabel(ctx, step.changes);
      return;
    case 'enroll-node':
      await recordPodPhase(ctx.stateDir, ctx.namespace, step.pod, 'handover');
      await relabel(ctx, {});
      await waitForPod(ctx, step.pod, 'enrolled in its node ztunnel', (p) => p.enrolled && p.sidecar === true);
      return;
    case 'stop-sidecar':
      await stopSidecar(ctx, step.pod);
      await recordPodPhase(ctx.stateDir, ctx.namespace, step.pod, 'ambient');
      await relabel(ctx, {});
      await waitForPod(ctx, step.pod, 'ambient', (p) => p.enrolled && p.meshed && p.sidecar !== true);
      return;
    case 'start-sidecar':
      await recordPodPhase(ctx.stateDir, ctx.namespace, step.pod, 'handover');
      await relabel(ctx, {});
      await waitForPod(ctx, step.pod, 'translated with its sidecar', (p) => p.sidecar === true);
      await startSidecar(ctx, step.pod);
      return;
    case 'unenroll-node':
      await recordPodPhase(ctx.stateDir, ctx.namespace, step.pod, 'sidecar');
      // At once, not after the controller's round trip: while both are enrolled, the sidecar's connect4
      // captures first but the node's sk_lookup (attached first) takes the SYN, and the node has no
      // original destination for it (docs/migration.md "Known limits"). The controller then agrees.
      await unenrollFromNode(ctx, step.pod);
      await relabel(ctx, {});
      await waitForPod(ctx, step.pod, 'unenrolled from its node ztunnel', (p) => !p.enrolled && p.sidecar === true);
      return;
    default:
      step satisfies never;
  }
}

async function unenrollFromNode(ctx: MigrationContext, pod: string): Promise<void> {
  const status = (await controllerRequest(ctx.stateDir, 'GET', '/status')) as MeshStatus;
  const node = status.pods.find((p) => p.namespace === ctx.namespace && p.name === pod)?.node;
  const uid = readLocalSidecars(ctx.stateDir).find((s) => s.role === roleOf(ctx, pod))?.uid;
  if (node === undefined || uid === undefined) return; // the controller's own unenrollment follows anyway
  await adminSocketRequest(
    adminSocketPath(ctx.stateDir, `ztunnel-${node}`),
    'DELETE',
    `/pods/${encodeURIComponent(uid)}`,
    {
      timeoutMs: 5_000,
    },
  ).catch(() => undefined);
}

/** Label changes plus the marker (always a change: the controller translates again). Returns the labels. */
async function relabel(ctx: MigrationContext, changes: Readonly<Record<string, string | null>>) {
  const args = [
    ...Object.entries(changes).map(([k, v]) => (v === null ? `${k}-` : `${k}=${v}`)),
    `${MIGRATION_LABEL}=${ctx.direction}`,
  ];
  const reply = (await controllerRequest(ctx.stateDir, 'POST', '/label', {
    kind: 'Namespace',
    name: ctx.namespace,
    changes: args,
  })) as { labels?: Record<string, string> };
  return reply.labels ?? {};
}

async function waitForPod(ctx: MigrationContext, pod: string, what: string, done: (p: PodStatus) => boolean) {
  await until(ctx, `${ctx.namespace}/${pod} ${what}`, async () => {
    const s = (await controllerRequest(ctx.stateDir, 'GET', '/status')) as MeshStatus;
    const p = s.pods.find((x) => x.namespace === ctx.namespace && x.name === pod);
    return p !== undefined && done(p) && s.nodes.every((n) => n.enrollmentConverged);
  });
}

/** Polls `check` (state we cannot subscribe to) with a bounded backoff until true or the step timeout. */
async function until(
  ctx: MigrationContext,
  what: string,
  check: () => Promise<boolean>,
  maxWaitMs = 250,
): Promise<void> {
  const deadline = Date.now() + ctx.stepTimeoutMs;
  let waitMs = 10;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new ClusterError(
        'FERRY_CLUSTER_MIGRATION_STEP_FAILED',
        `timed out after ${ctx.stepTimeoutMs} ms waiting for ${what}; the pod stays in its last recorded phase (re-run to continue; see ferry status, ferry logs controller)`,
      );
    }
    await delay(waitMs);
    waitMs = Math.min(waitMs * 2, maxWaitMs);
  }
}

function roleOf(ctx: MigrationContext, pod: string): string {
  return `${ctx.namespace}/${pod}/istio-proxy`;
}

/** The node ztunnel is enrolled underneath (phase handover): take the sidecar away without a gap. */
async function stopSidecar(ctx: MigrationContext, pod: string): Promise<void> {
  const { stateDir } = ctx;
  const role = roleOf(ctx, pod);
  const running = readLocalSidecars(stateDir).find((s) => s.role === role);
  if (running !== undefined) {
    await keepStopped(stateDir, running);
    await writeSidecars(
      stateDir,
      readLocalSidecars(stateDir).filter((s) => s.role !== role),
    );
    // The supervisor would restart it: wait until it let go (it re-reads sidecars.json every few seconds).
    await until(ctx, `the supervisor to release ${role}`, async () => {
      const report = readSupervisorReport(stateDir);
      return report === null || !alive(report.pid) || !report.processes.some((p) => p.role === role);
    });
  }
  const sidecar = running ?? readStoppedSidecars(stateDir).find((s) => s.role === role);
  if (sidecar === undefined) return; // never had one running (or already gone and forgotten)
  // The sidecar unenrolls its pod itself: its `enrolled` entry goes (the node's connect4, next in line,
  // captures from now on), then its sk_lookup link (the node's listeners answer); the sidecar's
  // listeners keep serving what they already accepted. A sidecar from before the admin socket: its pins
  // are removed below, after it exits.
  const pid = sidecar.pid;
  if (alive(pid)) {
    await adminSocketRequest(
      sidecarAdminSocket(stateDir, ctx.namespace, pod),
      'DELETE',
      `/pods/${encodeURIComponent(sidecar.uid)}`,
      {
        timeoutMs: 5_000,
      },
    ).catch(() => undefined);
    // What it accepted just before is still in its accept queues: let it serve that, then stop it.
    await delay(UNENROLL_GRACE_MS);
    signal(pid, 'SIGTERM');
    await until(ctx, `the sidecar of ${ctx.namespace}/${pod} (pid ${pid}) to exit`, async () => !alive(pid)).catch(() =>
      signal(pid, 'SIGKILL'),
    );
  }
  uninstallPins(sidecar.pinRoot);
}

/** How long a sidecar that unenrolled its pod still serves its accept queues before SIGTERM. */
const UNENROLL_GRACE_MS = 500;

/** Starts the pod's sidecar again (idempotent: a running one is left alone) and waits until it is ready. */
async function startSidecar(ctx: MigrationContext, pod: string): Promise<void> {
  const { stateDir } = ctx;
  const role = roleOf(ctx, pod);
  let sidecar = readLocalSidecars(stateDir).find((s) => s.role === role);
  if (sidecar === undefined || !alive(sidecar.pid)) {
    const kept = sidecar ?? readStoppedSidecars(stateDir).find((s) => s.role === role);
    if (kept === undefined) {
      throw new ClusterError(
        'FERRY_CLUSTER_MIGRATION_STEP_FAILED',
        `no sidecar launch recorded for ${ctx.namespace}/${pod} (${STOPPED_SIDECARS_FILE}); it cannot be started again`,
      );
    }
    const config = await readMeshConfig(stateDir);
    const token = config.nodes.find((n) => n.name === kept.node)?.token;
    if (token === undefined) throw new ClusterError('FERRY_CLUSTER_MIGRATION_STEP_FAILED', `no node ${kept.node}`);
    const pid = await startInCgroup(
      new StateJournal(stateDir),
      kept.cgroupDir,
      role,
      [...ctx.env.ferryArgv, ...kept.args],
      {
        env: { ...ctx.env.baseEnv, FERRY_CA_TOKEN: token },
        logFile: kept.logFile,
      },
    );
    sidecar = { ...kept, pid };
    // Supervised again from here (the supervisor adopts it from sidecars.json and the journal).
    await writeSidecars(stateDir, [...readLocalSidecars(stateDir).filter((s) => s.role !== role), sidecar]);
  }
  const readiness = sidecar.readiness;
  // Polled closely: from its readiness on (it enrolls its pod just before), the unenroll-node step is due.
  await until(
    ctx,
    `the sidecar of ${ctx.namespace}/${pod} to be ready`,
    async () => {
      const res = await fetch(`http://${readiness}/healthz/ready`, { signal: AbortSignal.timeout(2_000) });
      await res.text();
      return res.ok;
    },
    20,
  );
}

function readStoppedSidecars(stateDir: string): LocalSidecar[] {
  try {
    const v = JSON.parse(readFileSync(join(stateDir, STOPPED_SIDECARS_FILE), 'utf8')) as unknown;
    return Array.isArray(v) ? (v as LocalSidecar[]) : [];
  } catch {
    return [];
  }
}

async function keepStopped(stateDir: string, sidecar: LocalSidecar): Promise<void> {
  const next = [...readStoppedSidecars(stateDir).filter((s) => s.role !== sidecar.role), sidecar];
  await writeAtomic(join(stateDir, STOPPED_SIDECARS_FILE), next);
}

function writeSidecars(stateDir: string, sidecars: readonly LocalSidecar[]): Promise<void> {
  return writeAtomic(join(stateDir, SIDECARS_FILE), sidecars);
}

async function writeAtomic(file: string, value: unknown): Promise<void> {
  await writeFile(`${file}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
