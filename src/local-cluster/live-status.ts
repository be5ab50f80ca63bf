// What `ferry status` adds to the controller's view: the enrollment each ztunnel reports right now (its
// admin GET /pods, not the controller's last reconciliation), and the supervisor's restarts per process
// (supervisor.json). Reading is I/O (readLiveState); merging is pure (withLiveState).
import type { MeshStatus, PodStatus } from './controller/admin-api.ts';
import type { LocalMeshConfig } from './controller/mesh-files.ts';
import type { PodRecord } from './state.ts';
import { SUPERVISOR_ROLE, type SupervisedStatus, type SupervisorReport } from './supervisor.ts';

/** One ztunnel's answer to GET /pods. */
export interface ZtunnelPods {
  readonly node: string;
  /** netns paths of the pods it has enrolled; null when it did not answer. */
  readonly netnsPaths: ReadonlySet<string> | null;
  readonly error: string | null;
}

export interface LivePodStatus extends PodStatus {
  /** What the controller last saw (`enrolled` is what the node's ztunnel reports now, when it answered). */
  readonly controllerEnrolled: boolean;
  /** Where `enrolled` comes from. */
  readonly enrolledFrom: 'ztunnel' | 'controller';
}

export interface LiveMeshStatus extends Omit<MeshStatus, 'pods'> {
  readonly pods: readonly LivePodStatus[];
  readonly ztunnels: readonly { node: string; answered: boolean; enrolledPods: number; error: string | null }[];
  /** The supervisor and what it restarted; running false when it is not running. */
  readonly supervisor: { readonly running: boolean; readonly pid: number | null };
  readonly processes: readonly SupervisedStatus[];
}

/** GET /pods on every node's ztunnel admin address, in parallel, bounded by `timeoutMs`. */
export async function readZtunnelPods(config: LocalMeshConfig, timeoutMs = 2_000): Promise<ZtunnelPods[]> {
  return Promise.all(
    config.nodes.map(async (n): Promise<ZtunnelPods> => {
      try {
        const res = await fetch(`http://${n.admin}/pods`, { signal: AbortSignal.timeout(timeoutMs) });
        const body = (await res.json()) as { pods?: { netnsPath?: unknown }[] };
        if (!res.ok || !Array.isArray(body.pods))
          return { node: n.name, netnsPaths: null, error: `HTTP ${res.status}` };
        const paths = body.pods.map((p) => p.netnsPath).filter((p): p is string => typeof p === 'string');
        return { node: n.name, netnsPaths: new Set(paths), error: null };
      } catch (err) {
        return { node: n.name, netnsPaths: null, error: (err as Error).message ?? String(err) };
      }
    }),
  );
}

/** Pure: the controller's status with each pod's enrollment as its ztunnel reports it, and the restarts. */
export function withLiveState(
  s: MeshStatus,
  journalPods: readonly PodRecord[],
  ztunnels: readonly ZtunnelPods[],
  report: SupervisorReport | null,
  /** The newest journaled process of a role: its pid when it runs now, else null. */
  running: (role: string) => number | null,
): LiveMeshStatus {
  const netnsOf = new Map(journalPods.map((p) => [`${p.namespace}/${p.name}`, p.netnsPath]));
  const byNode = new Map(ztunnels.map((z) => [z.node, z]));
  return {
    ...s,
    pods: s.pods.map((p): LivePodStatus => {
      const live = byNode.get(p.node)?.netnsPaths ?? null;
      const netns = netnsOf.get(`${p.namespace}/${p.name}`);
      if (live === null || netns === undefined)
        return { ...p, controllerEnrolled: p.enrolled, enrolledFrom: 'controller' };
      return { ...p, enrolled: live.has(netns), controllerEnrolled: p.enrolled, enrolledFrom: 'ztunnel' };
    }),
    ztunnels: ztunnels.map((z) => ({
      node: z.node,
      answered: z.netnsPaths !== null,
      enrolledPods: z.netnsPaths?.size ?? 0,
      error: z.error,
    })),
    supervisor: { running: running(SUPERVISOR_ROLE) !== null, pid: running(SUPERVISOR_ROLE) },
    // Whether each runs is checked now (the report may be from a supervisor that is gone).
    processes: (report?.processes ?? []).map((p) => {
      const pid = running(p.role);
      return { ...p, running: pid !== null, pid: pid ?? p.pid };
    }),
  };
}

/** `ferry status` lines for the processes and for pods whose ztunnel disagrees with the controller. */
export function liveStatusLines(s: LiveMeshStatus, nowMs: number): string[] {
  const out: string[] = [];
  out.push(
    s.supervisor.running
      ? `processes (restarted by the supervisor, pid ${s.supervisor.pid ?? '?'}):`
      : 'processes (the supervisor is NOT running: dead processes stay dead until ferry up):',
  );
  for (const p of s.processes) {
    const state = p.running
      ? `running  pid ${p.pid ?? '?'}`
      : p.nextStartAt === null
        ? 'not running'
        : `restarting in ${Math.max(0, (Date.parse(p.nextStartAt) - nowMs) / 1000).toFixed(1)} s (crash loop)`;
    const exit = p.lastExitAt === null ? '' : `, last exit ${p.lastExitAt}`;
    out.push(`  ${p.role.padEnd(32)} ${state.padEnd(24)} restarts ${p.restarts}${exit}`);
  }
  for (const z of s.ztunnels) {
    out.push(
      z.answered
        ? `  ztunnel ${z.node}: ${z.enrolledPods} pod(s) enrolled (its /pods)`
        : `  ztunnel ${z.node}: /pods did not answer (${z.error ?? 'no reply'}): enrollment shown as the controller last saw it`,
    );
  }
  const differ = s.pods.filter((p) => p.enrolledFrom === 'ztunnel' && p.enrolled !== p.controllerEnrolled);
  for (const p of differ) {
    out.push(
      `  ${p.namespace}/${p.name}: ${p.enrolled ? 'enrolled' : 'NOT enrolled'} on ${p.node}'s ztunnel, the controller last saw ${p.controllerEnrolled ? 'enrolled' : 'not enrolled'} (it reconciles within seconds)`,
    );
  }
  return out;
}
