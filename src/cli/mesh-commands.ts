// `ferry status/apply/delete/label/logs` for a local cluster started with `ferry up -f`: thin clients of the
// controller admin API (local-cluster/controller-client.ts), except `logs`, which prints a process's log
// file from the state dir. One module: each command is a few lines of argument parsing and printing.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { patchLabels } from '../kube/apply.ts';
import { isJson, KubeClient, loadKubeConfig } from '../kube/client.ts';
import { RestMapper } from '../kube/rest-mapper.ts';
import { readManifestObjects, sendManifests } from '../local-cluster/api-manifests.ts';
import { podsView, printPods } from '../local-cluster/api-mesh-up.ts';
import { apiMeshView, printMeshView } from '../local-cluster/api-status.ts';
import { clusterCliEnv } from '../local-cluster/cli-env.ts';
import type { MeshStatus } from '../local-cluster/controller/admin-api.ts';
import { LocalControllerError } from '../local-cluster/controller/errors.ts';
import { parseLabelChanges } from '../local-cluster/controller/labeled-source.ts';
import { type LocalMeshConfig, MESH_FILE, readMeshConfig } from '../local-cluster/controller/mesh-files.ts';
import { controllerRequest } from '../local-cluster/controller-client.ts';
import { liveStatusLines, readZtunnelPods, withLiveState } from '../local-cluster/live-status.ts';
import { printSummary } from '../local-cluster/mesh-up.ts';
import { runningPid } from '../local-cluster/restart.ts';
import { loadState, podsOf } from '../local-cluster/state.ts';
import { readSupervisorReport } from '../local-cluster/supervisor.ts';

const out = (line: string) => process.stdout.write(`${line}\n`);

/** The options every command shares (each uses the ones it documents). */
function common(argv: readonly string[]) {
  const env = clusterCliEnv();
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      cluster: { type: 'string', default: env.defaultCluster },
      json: { type: 'boolean' },
      file: { type: 'string', short: 'f', multiple: true },
    },
  });
  const cluster = values.cluster;
  return { values, positionals, cluster, stateDir: join(env.stateRoot, cluster) };
}

const STATUS_HELP = 'usage: ferry status [--cluster <name>] [--json]\n';

/** `ferry status`: nodes, pods (IP, node, enrolled, identity), services with VIPs, policies, waypoints. */
export async function status(argv: readonly string[]): Promise<number> {
  const { values, stateDir } = common(argv);
  if (values.help === true) return help(STATUS_HELP);
  const onApi = await apiCluster(stateDir);
  if (onApi !== null) return apiStatus(onApi, values.json === true);
  const controller = (await controllerRequest(stateDir, 'GET', '/status')) as MeshStatus;
  // Enrollment as each ztunnel reports it now, and the supervisor's restarts (not the controller's cache).
  const s = withLiveState(
    controller,
    podsOf(loadState(stateDir)),
    await readZtunnelPods(await readMeshConfig(stateDir)),
    readSupervisorReport(stateDir),
    (role) => runningPid({ stateDir }, role),
  );
  if (values.json === true) {
    out(JSON.stringify(s, null, 2));
    return 0;
  }
  out(`cluster ${s.cluster} (revision ${s.revision})`);
  out('nodes:');
  for (const n of s.nodes) {
    const state = n.xdsConnected ? (n.enrollmentConverged ? 'ready' : 'enrolling') : 'ztunnel not connected';
    out(`  ${n.name.padEnd(10)} ${state}${n.error === null ? '' : ` (${n.error})`}`);
  }
  printSummary(s, out);
  for (const line of liveStatusLines(s, Date.now())) out(line);
  out('policies:');
  for (const p of s.policies) out(`  ${`${p.namespace}/${p.name}`.padEnd(32)} ${p.action} (${p.scope})`);
  if (s.waypoints.length > 0) {
    out('waypoints:');
    for (const w of s.waypoints) {
      out(`  ${`${w.namespace}/${w.name}`.padEnd(32)} for ${w.for}  ${w.xdsConnected ? 'connected' : 'not connected'}`);
    }
  }
  if (s.routes.length > 0) {
    out('routes:');
    for (const r of s.routes) out(`  ${r}`);
  }
  if (s.diagnostics.length > 0) {
    out('manifest problems:');
    for (const d of s.diagnostics) out(`  ${d}`);
  }
  return 0;
}

interface ChangeReply {
  readonly changed: readonly string[];
  readonly diagnostics: readonly string[];
  readonly propagationMs: number;
  readonly xdsConverged: boolean;
  readonly enrollmentConverged: boolean;
  readonly pendingPods: readonly string[];
  readonly labels?: Record<string, string>;
}

function printChange(verb: string, r: ChangeReply): number {
  for (const d of r.diagnostics) out(`  ${d}`);
  for (const c of r.changed) out(`${c} ${verb}`);
  const failed = r.diagnostics.some((d) => / error /.test(d));
  if (r.changed.length === 0)
    out(failed ? `nothing ${verb}: fix the errors above (the mesh is unchanged)` : `nothing ${verb}`);
  if (failed && r.changed.length === 0) return 1; // nothing was sent to the ztunnels
  out(
    r.xdsConverged
      ? `every ztunnel has the change (${r.propagationMs} ms)`
      : `warning: not every ztunnel ACKed the change within ${r.propagationMs} ms (see ferry status)`,
  );
  if (!r.enrollmentConverged) out('warning: enrollment has not converged yet (see ferry status)');
  if (r.pendingPods.length > 0)
    out(`pods not created by the local cluster (run ferry down/up): ${r.pendingPods.join(', ')}`);
  return failed ? 1 : 0;
}

/** `ferry apply -f` / `ferry delete -f`. */
export async function applyOrDelete(verb: 'apply' | 'delete', argv: readonly string[]): Promise<number> {
  const { values, stateDir } = common(argv);
  if (values.help === true || values.file === undefined) {
    return help(`usage: ferry ${verb} -f <dir|file> [-f …] [--cluster <name>]\n`, values.help === true ? 0 : 2);
  }
  const paths = values.file.map((p) => resolve(p));
  const onApi = await apiCluster(stateDir);
  if (onApi !== null) {
    // Like kubectl: the API accepts the objects; the controller and the node agents follow its watch.
    await withApi(onApi, async (client) =>
      sendManifests(client, await RestMapper.discover(client), verb, await readManifestObjects(paths), out),
    );
    return 0;
  }
  const r = (await controllerRequest(stateDir, 'POST', `/${verb}`, { paths })) as ChangeReply;
  return printChange(verb === 'apply' ? 'configured' : 'deleted', r);
}

const LABEL_HELP = `usage: ferry label namespace <name> key=value|key- …  [--cluster <name>]
       ferry label pod <ns>/<name> key=value|key- …
Changes labels live (e.g. istio.io/dataplane-mode=ambient enrolls, istio.io/dataplane-mode- unenrolls);
no pod restarts.
`;

/** `ferry label namespace|pod <name> key=value|key-`. */
export async function label(argv: readonly string[]): Promise<number> {
  // `key-` looks like an option to parseArgs only when it starts with '-': label keys never do.
  const { values, positionals, stateDir } = common(argv);
  if (values.help === true) return help(LABEL_HELP);
  const [kindArg, target, ...changes] = positionals;
  if (kindArg === undefined || target === undefined) return help(LABEL_HELP, 2);
  parseLabelChanges(changes); // fail fast with the syntax error, before reaching the controller
  let body: { kind: string; name: string; namespace?: string };
  if (['namespace', 'namespaces', 'ns'].includes(kindArg)) body = { kind: 'Namespace', name: target };
  else if (['pod', 'pods', 'po'].includes(kindArg)) {
    const slash = target.indexOf('/');
    body =
      slash === -1
        ? { kind: 'Pod', namespace: 'default', name: target }
        : { kind: 'Pod', namespace: target.slice(0, slash), name: target.slice(slash + 1) };
  } else {
    throw new LocalControllerError(
      'FERRY_LOCAL_BAD_REQUEST',
      `ferry label: ${JSON.stringify(kindArg)} is not namespace or pod`,
    );
  }
  const onApi = await apiCluster(stateDir);
  if (onApi !== null) {
    const parsed = new Map(parseLabelChanges(changes).map((c) => [c.key, c.value] as const));
    const live = await withApi(onApi, async (client) =>
      patchLabels(client, await RestMapper.discover(client), { apiVersion: 'v1', ...body }, parsed),
    );
    const labels = isJson(live.metadata) && isJson(live.metadata.labels) ? live.metadata.labels : {};
    out(`${body.kind.toLowerCase()}/${body.name} labeled`);
    out(
      `labels: ${
        Object.entries(labels)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(',') || '(none)'
      }`,
    );
    return 0;
  }
  const r = (await controllerRequest(stateDir, 'POST', '/label', { ...body, changes })) as ChangeReply;
  const code = printChange('labeled', r);
  out(
    `labels: ${
      Object.entries(r.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(',') || '(none)'
    }`,
  );
  return code;
}

const LOGS_HELP = `usage: ferry logs <component> [--cluster <name>]
components: controller, ztunnel-node-<n>, dns, supervisor, waypoint-<ns>-<name>, <ns>_<pod>_<container>
`;

/** `ferry logs <component>`: prints that process's log file. */
export async function logs(argv: readonly string[]): Promise<number> {
  const { values, positionals, stateDir } = common(argv);
  if (values.help === true) return help(LOGS_HELP);
  const [component] = positionals;
  const logDir = join(stateDir, 'logs');
  const known = (await readdir(logDir).catch(() => [] as string[]))
    .filter((f) => f.endsWith('.log'))
    .map((f) => f.slice(0, -4));
  if (component === undefined) return help(`${LOGS_HELP}available: ${known.join(', ') || 'none'}\n`, 2);
  if (!/^[A-Za-z0-9._-]+$/.test(component) || !known.includes(component)) {
    throw new LocalControllerError(
      'FERRY_LOCAL_NOT_FOUND',
      `no log ${JSON.stringify(component)} in ${logDir}; available: ${known.join(', ') || 'none'}`,
    );
  }
  process.stdout.write(await readFile(join(logDir, `${component}.log`)));
  return 0;
}

/** The cluster's mesh.json when the cluster runs on its Kubernetes API (`ferry up --api`), else null. */
async function apiCluster(stateDir: string): Promise<{ stateDir: string; config: LocalMeshConfig } | null> {
  if (!existsSync(join(stateDir, MESH_FILE))) return null;
  const config = await readMeshConfig(stateDir);
  return config.api === undefined ? null : { stateDir, config };
}

async function withApi<T>(cluster: { config: LocalMeshConfig }, f: (client: KubeClient) => Promise<T>): Promise<T> {
  const client = new KubeClient(loadKubeConfig({ kubeconfigPath: cluster.config.api?.kubeconfig ?? '' }));
  try {
    return await f(client);
  } finally {
    client.close();
  }
}

/** `ferry status` of a cluster on its API: pods as the API and the node agents see them, then the mesh's objects. */
async function apiStatus(cluster: { stateDir: string; config: LocalMeshConfig }, json: boolean): Promise<number> {
  const { pods, view } = await withApi(cluster, async (client) => ({
    pods: await podsView(client, cluster.stateDir, cluster.config),
    view: await apiMeshView(client),
  }));
  if (json) {
    out(JSON.stringify({ cluster: cluster.config.cluster, api: cluster.config.api, pods, ...view }, null, 2));
    return 0;
  }
  out(
    `cluster ${cluster.config.cluster} on its Kubernetes API (kubectl --kubeconfig ${cluster.config.api?.kubeconfig})`,
  );
  printPods(pods, out);
  printMeshView(view, out);
  return 0;
}

function help(text: string, code = 0): number {
  (code === 0 ? process.stdout : process.stderr).write(text);
  return code;
}
