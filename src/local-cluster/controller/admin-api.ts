// The local controller's admin API (plain HTTP, JSON): what `ferry status/apply/delete/label` call. Reads
// (`/status`, `/healthz/ready`) are served on 127.0.0.1 and on the admin socket; changes (`/apply`,
// `/delete`, `/label`) only on the admin socket, `<stateDir>/controller-admin.sock` (0600, root only).
// A change answers only once it is durable (controller-state.json), published, ACKed by every
// ztunnel and enrollment has converged (bounded waits), so the CLI returns when the mesh has the change
// (an error reply or a lost connection means it may or may not have been applied); the reply carries how
// long the xDS propagation took (`propagationMs`: request received → every ztunnel ACKed). Browser-originated changes
// are refused (an `Origin` header), like the ztunnel admin.

import { isAbsolute } from 'node:path';
import { formatRouteStatus } from '../../../gateway-api/status.ts';
import type { ChangeResult } from '../../controller/sources/manifest-source.ts';
import { formatDiagnostic } from '../../controller/sources/types.ts';
import { formatSpiffeId } from '../../identity/spiffe-id.ts';
import { workloadIdentity } from '../../mesh/mesh-view.ts';
import { type HttpReply, type HttpRequestInfo, HttpServer } from '../../runtime/http-server.ts';
import { parseHostPort } from '../../runtime/process-config.ts';
import { loadState, podsOf } from '../state.ts';
import { LocalControllerError } from './errors.ts';
import { type LabelTarget, parseLabelChanges } from './labeled-source.ts';
import type { LocalController } from './local-controller.ts';
import { adminSocketPath } from './mesh-files.ts';

const MAX_BODY_BYTES = 64 * 1024;
const XDS_WAIT_MS = 10_000;
const ENROLL_WAIT_MS = 20_000;

export interface PodStatus {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly ip: string;
  /** HBONE in the published config (labels say: enrolled). */
  readonly meshed: boolean;
  /** The node ztunnel reports the pod enrolled (capture active). */
  readonly enrolled: boolean;
  readonly identity: string | null;
  /** A waypoint's pod: speaks HBONE itself, never enrolled. */
  readonly waypoint: boolean;
  /** A pod with Ferry's sidecar (istio-proxy): speaks HBONE itself, never enrolled in its node's ztunnel. */
  readonly sidecar?: boolean;
}

export interface MeshStatus {
  readonly cluster: string;
  readonly revision: number;
  readonly nodes: readonly {
    name: string;
    xdsConnected: boolean;
    enrollmentConverged: boolean;
    error: string | null;
  }[];
  readonly pods: readonly PodStatus[];
  readonly pendingPods: readonly string[];
  readonly services: readonly { namespace: string; name: string; vip: string | null; ports: string[] }[];
  readonly policies: readonly { namespace: string; name: string; action: string; scope: string }[];
  readonly waypoints: readonly { namespace: string; name: string; for: string; xdsConnected: boolean }[];
  /** `ferry status` lines, one per HTTPRoute parent. */
  readonly routes: readonly string[];
  readonly diagnostics: readonly string[];
}

export function meshStatus(c: LocalController): MeshStatus {
  const config = c.mesh.current?.config;
  const workloads = new Map((config?.workloads ?? []).map((w) => [`${w.namespace}/${w.name}`, w]));
  const enrolled = c.enrollment.enrolled();
  const clients = c.xds.clients();
  const enrollStatus = c.enrollment.status();
  const waypointUids = new Set(c.mesh.current?.waypointWorkloads ?? []);
  const sidecarUids = new Set(c.mesh.current?.sidecarWorkloads ?? []);
  return {
    cluster: c.config.cluster,
    revision: c.mesh.revision,
    nodes: c.config.nodes.map((n) => {
      const e = enrollStatus.find((s) => s.node === n.name);
      return {
        name: n.name,
        xdsConnected: clients.some((cl) => cl.nodeId.endsWith(`~${n.name}`)),
        // Converged = pods enrolled AND the ztunnels have the config announcing them (HBONE after enrollment).
        enrollmentConverged: (e?.converged ?? false) && c.xdsConverged(),
        error: e?.error ?? null,
      };
    }),
    pods: podsOf(loadState(c.stateDir)).map((p) => {
      const w = workloads.get(`${p.namespace}/${p.name}`);
      const waypoint = w !== undefined && waypointUids.has(w.uid);
      const sidecar = w !== undefined && sidecarUids.has(w.uid);
      const meshed = w?.protocol === 'HBONE' && !waypoint && !sidecar;
      return {
        namespace: p.namespace,
        name: p.name,
        node: `node-${p.node}`,
        ip: p.ip,
        meshed,
        enrolled: w !== undefined && enrolled.has(w.uid),
        identity: w === undefined || !(meshed || waypoint || sidecar) ? null : formatSpiffeId(workloadIdentity(w)),
        waypoint,
        sidecar,
      };
    }),
    pendingPods: c.placement.pendingPods,
    services: (config?.services ?? []).map((s) => ({
      namespace: s.namespace,
      name: s.name,
      vip: s.vips[0]?.address ?? null,
      ports: s.ports.map((p) => `${p.servicePort}→${p.targetPort === 0 ? 'named' : p.targetPort}`),
    })),
    policies: (config?.policies ?? []).map((p) => ({
      namespace: p.namespace,
      name: p.name,
      action: p.action,
      scope: p.scope,
    })),
    waypoints: (c.mesh.current?.waypoints ?? []).map((w) => ({
      namespace: w.namespace,
      name: w.name,
      for: w.for,
      xdsConnected: clients.some((cl) => cl.nodeId.startsWith(`waypoint~${w.namespace}/${w.name}~`)),
    })),
    routes: (c.mesh.current?.routeStatus ?? []).flatMap(formatRouteStatus),
    diagnostics: c.diagnostics.map(formatDiagnostic),
  };
}

/** Starts the admin server on the address in mesh.json. */
export async function startAdminApi(c: LocalController): Promise<HttpServer> {
  const listen = parseHostPort(c.config.controller.admin, 'controller admin address');
  const server = new HttpServer({
    name: 'controller-admin',
    listen,
    socketPath: adminSocketPath(c.stateDir, 'controller'),
    logger: c.log,
    routes: [
      { path: '/healthz/ready', methods: { GET: () => ({ status: 200, body: 'ready\n' }) } },
      { path: '/status', methods: { GET: () => json(200, meshStatus(c)) } },
      change(c, '/apply', async (body) => c.source.apply(paths(body))),
      change(c, '/delete', async (body) => c.source.delete(paths(body))),
      change(c, '/label', async (body) => {
        const target = labelTarget(body);
        const labels = await c.source.label(target, parseLabelChanges(strings(field(body, 'changes'), 'changes')));
        return {
          changed: [`${target.kind}/${target.namespace === '' ? '' : `${target.namespace}/`}${target.name}`],
          diagnostics: [],
          labels,
        };
      }),
    ],
  });
  await server.start();
  return server;
}

type ChangeReply = ChangeResult & { readonly labels?: Record<string, string> };

function change(c: LocalController, path: string, run: (body: unknown) => Promise<ChangeReply>) {
  return {
    path,
    maxBodyBytes: MAX_BODY_BYTES,
    methods: {
      POST: async (req: HttpRequestInfo): Promise<HttpReply> => {
        if (req.headers.origin !== undefined)
          return json(403, { error: 'admin changes are not accepted from browsers' });
        const started = performance.now();
        let result: ChangeReply;
        try {
          result = await run(JSON.parse(req.body ?? ''));
        } catch (err) {
          if (err instanceof LocalControllerError) {
            const status = err.code === 'FERRY_LOCAL_STATE_WRITE_FAILED' ? 500 : 400; // ours, not the caller's
            return json(status, { code: err.code, error: err.message });
          }
          if (err instanceof SyntaxError)
            return json(400, { code: 'FERRY_LOCAL_BAD_REQUEST', error: 'body is not JSON' });
          throw err;
        }
        await c.mesh.settled();
        const xdsWait = await waited(c.whenXdsConverged(AbortSignal.timeout(XDS_WAIT_MS)));
        const propagationMs = Math.round(performance.now() - started);
        const enrollWait = await waited(c.enrollment.whenConverged(AbortSignal.timeout(ENROLL_WAIT_MS)));
        // Newly enrolled pods are announced as HBONE only now (gateHbone): wait for that config's ACKs too,
        // so traffic right after `ferry label` already goes through the mesh.
        const announced =
          !enrollWait || !xdsWait || (await waited(c.whenXdsConverged(AbortSignal.timeout(XDS_WAIT_MS))));
        await c.store.settled(); // the enrollments this change caused are on disk too
        c.log.info(
          {
            path,
            changed: result.changed.length,
            propagationMs,
            xdsConverged: xdsWait && announced,
            enrollmentConverged: enrollWait,
          },
          'change applied',
        );
        return json(200, {
          changed: result.changed,
          diagnostics: result.diagnostics.map(formatDiagnostic),
          ...(result.labels === undefined ? {} : { labels: result.labels }),
          revision: c.mesh.revision,
          propagationMs,
          xdsConverged: xdsWait && announced,
          enrollmentConverged: enrollWait,
          pendingPods: c.placement.pendingPods,
        });
      },
    },
  };
}

async function waited(p: Promise<void>): Promise<boolean> {
  try {
    await p;
    return true;
  } catch {
    return false;
  }
}

function field(body: unknown, key: string): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('body must be a JSON object');
  return Object.hasOwn(body, key) ? (body as Record<string, unknown>)[key] : undefined;
}

function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(`${what} must be a list of strings`);
  return v;
}

function paths(body: unknown): string[] {
  const list = strings(field(body, 'paths'), 'paths');
  if (list.length === 0 || !list.every((p) => isAbsolute(p))) throw bad('paths must be absolute manifest paths');
  return list;
}

function labelTarget(body: unknown): LabelTarget {
  const kind = field(body, 'kind');
  const name = field(body, 'name');
  const namespace = field(body, 'namespace') ?? '';
  if ((kind !== 'Namespace' && kind !== 'Pod') || typeof name !== 'string' || typeof namespace !== 'string') {
    throw bad('label needs kind (Namespace|Pod), name and, for pods, namespace');
  }
  return { kind, name, namespace: kind === 'Namespace' ? '' : namespace };
}

function bad(message: string): LocalControllerError {
  return new LocalControllerError('FERRY_LOCAL_BAD_REQUEST', message);
}

function json(status: number, value: unknown): HttpReply {
  return { status, body: `${JSON.stringify(value, null, 2)}\n`, contentType: 'application/json' };
}
