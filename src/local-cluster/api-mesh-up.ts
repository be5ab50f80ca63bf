// `ferry up --api -f <manifests>`: the mesh on a local Kubernetes (docs/architecture.md "Local cluster on
// its API"). The same flow as on a real cluster: a bare cluster (bare-up.ts: API server, kubelets,
// scheduler, Deployment/ReplicaSet/DaemonSet controllers) is the source of truth; Ferry's CRDs and the
// manifests go into its API; the controller runs on that API (`ferry controller --kubeconfig`: xDS over
// TLS, the cluster's CA, node tokens), the cluster DNS reads the controller's xDS, and each node's ztunnel
// enrolls the pods of its node from the API (`--enroll-from=kubernetes`). `ferry up` returns once every
// pod runs and every ambient pod is enrolled; then the supervisor restarts whatever dies.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { applyObject, asManifestObject } from '../kube/apply.ts';
import { isJson, type Json, KubeClient, loadKubeConfig } from '../kube/client.ts';
import { RestMapper } from '../kube/rest-mapper.ts';
import { decideAmbient, podWorkloadUid } from '../mesh/ambient-enrollment.ts';
import { adminSocketRequest } from '../runtime/admin-socket.ts';
import { readManifestObjects, sendManifests } from './api-manifests.ts';
import { apiWaypointTemplate } from './api-waypoint-template.ts';
import { crdManifests } from './apiserver/crds.ts';
import type { SidecarInjectionValues } from './apiserver/sidecar-admission.ts';
import { type BareCluster, startBareCluster } from './bare-up.ts';
import type { ClusterCliEnv } from './cli-env.ts';
import { LocalControllerError } from './controller/errors.ts';
import {
  adminSocketPath,
  type LocalMeshConfig,
  loadOrCreateCa,
  newNodeToken,
  nodeTokensPath,
  writeJsonAtomic,
  writeMeshConfig,
} from './controller/mesh-files.ts';
import { DNS_ROLE, dnsArgs, writeDnsFile } from './dns/dns-file.ts';
import { NETNS_DIR } from './layout.ts';
import { freePorts } from './ports.ts';
import { CONTROLLER_ROLE } from './restart.ts';
import { SUPERVISOR_ROLE } from './supervisor.ts';
import { ROOT_CERT_CONFIGMAP, tuningEnv, WAYPOINT_CA_AUDIENCE, ztunnelLaunch } from './system-processes.ts';
import { waitReady } from './wait-ready.ts';

export interface ApiMeshUpOptions {
  readonly cluster: string;
  readonly nodes: number;
  readonly paths: readonly string[];
  readonly trustDomain: string;
  readonly out: (line: string) => void;
}

const READY_TIMEOUT_MS = 180_000;
const WAYPOINT_TEMPLATE_FILE = 'waypoint-template.yaml';
/** The cluster id of workload uids (`Kubernetes//Pod/<ns>/<name>`), as the controller and node agents use. */
const CLUSTER_ID = 'Kubernetes';

export async function apiMeshUp(env: ClusterCliEnv, opts: ApiMeshUpOptions): Promise<number> {
  const out = opts.out;
  const paths = opts.paths.map((p) => resolve(p));
  out(`reading manifests: ${paths.join(', ')}`);
  // Checked before anything exists: one error and nothing is created (as `ferry up -f`).
  const manifests = await readManifestObjects(paths);
  if (manifests.problems.length > 0) {
    for (const p of manifests.problems) out(`  ${p}`);
    throw new LocalControllerError(
      'FERRY_LOCAL_BAD_MANIFESTS',
      `${manifests.problems.length} error(s) in the manifests (listed above); nothing was created`,
    );
  }
  const bare = await startBareCluster(env, {
    cluster: opts.cluster,
    nodes: opts.nodes,
    out,
    startSupervisor: false,
    // Opt-in until the kubelet fills the sidecar's node paths (docs/architecture.md "Sidecars on the local
    // API"): without them an injected istio-proxy cannot start, and peers would tunnel to a dead 15008.
    ...(process.env.FERRY_API_SIDECAR_INJECTION === '1'
      ? { sidecarInjection: (gateway: string) => apiSidecarInjection(opts.trustDomain, gateway) }
      : {}),
  });
  const { layout } = bare;
  const client = new KubeClient(loadKubeConfig({ kubeconfigPath: bare.kubeconfigPath }));
  try {
    out(`installing Ferry's CRDs (Istio security, Gateway API kinds Ferry reads)`);
    const bootstrap = await RestMapper.discover(client);
    for (const crd of crdManifests()) await applyObject(client, bootstrap, asManifestObject(crd, 'ferry CRDs'));
    const mapper = await discoverWithCrds(client);

    const config = await writeApiMeshFiles(bare, opts);
    out(`starting controller on the API (xDS ${config.controller.xds} TLS, CA ${config.controller.ca})`);
    // `--cluster`: mesh.json's arguments (apiControllerArgs) plus the relay pods reach it through, exactly
    // as the supervisor restarts it.
    const controllerPid = await bare.startSystemProcess(CONTROLLER_ROLE, ['controller', '--cluster', opts.cluster]);
    await waitUntil(layout, 'controller ready', CONTROLLER_ROLE, controllerPid, async () =>
      httpOk(`http://${config.controller.admin}/healthz/ready`),
    );

    out('applying the manifests through the API:');
    await sendManifests(client, mapper, 'apply', manifests, (line) => out(`  ${line}`));

    const dnsSpec = { address: bare.gateway, netnsPath: `${NETNS_DIR}/${layout.bridgeNetns}`, readiness: await addr() };
    const dns = { ...dnsSpec, args: dnsArgs(opts.cluster, dnsSpec) };
    await writeDnsFile(layout.stateDir, dns);
    out(`starting cluster DNS on ${dns.address}:53 (bridge netns)`);
    const dnsPid = await bare.startSystemProcess(DNS_ROLE, dns.args);

    // The node ztunnels pin below the cluster's pin root (journaled by the bare cluster, on bpffs).
    mkdirSync(layout.pinRoot, { recursive: true });
    for (const [i, node] of bare.nodes.entries()) {
      mkdirSync(node.cgroupDir, { recursive: true });
      const launch = ztunnelLaunch(layout, config, i);
      if (launch === undefined) continue;
      out(`starting ${launch.role} (node agent on the API)`);
      const pid = await bare.startSystemProcess(launch.role, launch.args, launch.env);
      const readiness = config.nodes[i]?.readiness ?? '';
      await waitUntil(layout, `${launch.role} ready`, launch.role, pid, async () =>
        httpOk(`http://${readiness}/healthz/ready`),
      );
      out(`  ${launch.role} ready`);
    }
    await waitUntil(layout, 'cluster DNS ready', DNS_ROLE, dnsPid, async () =>
      httpOk(`http://${dns.readiness}/healthz/ready`),
    );
    out('  cluster DNS ready');

    const pods = await waitUntil(layout, 'every pod running and enrolled', CONTROLLER_ROLE, controllerPid, async () => {
      const view = await podsView(client, layout.stateDir, config);
      return view.every((p) => p.phase === 'Running' && p.enrolled === p.ambient) ? view : false;
    });
    bare.journal.record({ kind: 'ready' });
    const supervisorPid = await bare.startSystemProcess(
      SUPERVISOR_ROLE,
      ['supervise', '--cluster', opts.cluster],
      tuningEnv(process.env),
    );
    out(`started the supervisor (pid ${supervisorPid}): every process of the cluster is restarted when it dies`);
    out(`cluster ${opts.cluster} is up on its Kubernetes API:`);
    out(`  kubectl --kubeconfig ${bare.kubeconfigPath} get pods -A`);
    printPods(pods, out);
    return 0;
  } finally {
    client.close();
  }
}

async function discoverWithCrds(client: KubeClient): Promise<RestMapper> {
  // A CRD's kinds are served once it is established: rediscover until the last one is listed.
  for (let i = 0; ; i++) {
    const mapper = await RestMapper.discover(client);
    try {
      mapper.resourceFor('gateway.networking.k8s.io/v1', 'HTTPRoute');
      mapper.resourceFor('security.istio.io/v1', 'AuthorizationPolicy');
      return mapper;
    } catch (err) {
      if (i >= 50) throw err;
      await delay(100);
    }
  }
}

/** The relay's ports on the pods' gateway address: the chart's xDS and CA ports (the bridge netns is ours). */
const POD_GATEWAY_XDS_PORT = 15010;
const POD_GATEWAY_CA_PORT = 15012;
/** The image of injected sidecars: the kubelet runs this Ferry for `ferry/ferry` (images.ts). */
const DEFAULT_SIDECAR_IMAGE = 'ferry/ferry:local';

/**
 * What the API server's injector puts in a pod (docs/architecture.md "Sidecars on the local API"): the
 * sidecar dials xDS and the CA through the relay on the pods' gateway, as the waypoints do.
 */
function apiSidecarInjection(trustDomain: string, gateway: string): SidecarInjectionValues {
  return {
    image: process.env.FERRY_SIDECAR_IMAGE ?? DEFAULT_SIDECAR_IMAGE,
    trustDomain,
    xdsAddress: `${gateway}:${POD_GATEWAY_XDS_PORT}`,
    caAddress: `${gateway}:${POD_GATEWAY_CA_PORT}`,
    caAudience: WAYPOINT_CA_AUDIENCE,
    rootCertConfigMap: ROOT_CERT_CONFIGMAP,
  };
}

/**
 * mesh.json (with `api`), the CA in `ca/`, the node tokens file the controller's CA checks, and the waypoint
 * template the controller fills per ferry-waypoint Gateway (docs/architecture.md "Waypoints on the local API").
 */
async function writeApiMeshFiles(bare: BareCluster, opts: ApiMeshUpOptions): Promise<LocalMeshConfig> {
  const stateDir = bare.layout.stateDir;
  const ports = await freePorts(3 + 3 * bare.nodes.length);
  const next = () => `127.0.0.1:${ports.shift()}`;
  const xdsPort = ports.shift();
  const podGateway = {
    netnsPath: `${NETNS_DIR}/${bare.layout.bridgeNetns}`,
    address: bare.gateway,
    xdsPort: POD_GATEWAY_XDS_PORT,
    caPort: POD_GATEWAY_CA_PORT,
    waypointTemplate: join(stateDir, WAYPOINT_TEMPLATE_FILE),
  };
  writeFileSync(
    podGateway.waypointTemplate,
    apiWaypointTemplate({
      trustDomain: opts.trustDomain,
      xdsAddress: `${bare.gateway}:${POD_GATEWAY_XDS_PORT}`,
      caAddress: `${bare.gateway}:${POD_GATEWAY_CA_PORT}`,
    }),
    { mode: 0o600 },
  );
  const config: LocalMeshConfig = {
    cluster: opts.cluster,
    trustDomain: opts.trustDomain,
    manifests: opts.paths.map((p) => resolve(p)),
    // The xDS serving certificate names `localhost`: clients dial that name.
    controller: { xds: `localhost:${xdsPort}`, ca: next(), admin: next() },
    nodes: bare.nodes.map((n) => ({
      name: n.name,
      admin: next(),
      metrics: next(),
      readiness: next(),
      token: newNodeToken(),
    })),
    api: { kubeconfig: bare.kubeconfigPath, podGateway },
  };
  await loadOrCreateCa(stateDir, opts.trustDomain);
  await writeMeshConfig(stateDir, config);
  await writeJsonAtomic(nodeTokensPath(stateDir), Object.fromEntries(config.nodes.map((n) => [n.token, n.name])));
  return config;
}

export interface ApiPodView {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly ip: string;
  readonly phase: string;
  /** The ambient rule says this pod is in the mesh. */
  readonly ambient: boolean;
  /** Its node's ztunnel reports it enrolled. */
  readonly enrolled: boolean;
}

/** Pods from the API, with the ambient rule's verdict and what each node's ztunnel reports enrolled. */
export async function podsView(client: KubeClient, stateDir: string, config: LocalMeshConfig): Promise<ApiPodView[]> {
  const namespaces = new Map(
    (await client.list('/api/v1/namespaces')).items.map((n) => [nameOf(n), labelsOf(n)] as const),
  );
  const enrolled = new Set<string>();
  for (const node of config.nodes) {
    const role = `ztunnel-${node.name}`;
    const reply = await adminSocketRequest(adminSocketPath(stateDir, role), 'GET', '/pods').catch(() => null);
    if (reply === null || reply.status !== 200) continue; // a ztunnel down: its pods show as not enrolled
    const body = JSON.parse(reply.text) as { pods?: { uid?: unknown }[] };
    for (const p of body.pods ?? []) if (typeof p.uid === 'string') enrolled.add(p.uid);
  }
  return (await client.list('/api/v1/pods')).items.map((pod) => {
    const meta = isJson(pod.metadata) ? pod.metadata : {};
    const spec = isJson(pod.spec) ? pod.spec : {};
    const status = isJson(pod.status) ? pod.status : {};
    const namespace = typeof meta.namespace === 'string' ? meta.namespace : '';
    const name = nameOf(pod);
    const containers = Array.isArray(spec.containers) ? spec.containers.filter(isJson).map((c) => String(c.name)) : [];
    const ambient = decideAmbient({
      podLabels: labelsOf(pod),
      podAnnotations: annotationsOf(pod),
      containerNames: containers,
      hostNetwork: spec.hostNetwork === true,
      namespaceLabels: namespaces.get(namespace) ?? new Map(),
    }).ambient;
    return {
      namespace,
      name,
      node: typeof spec.nodeName === 'string' ? spec.nodeName : '',
      ip: typeof status.podIP === 'string' ? status.podIP : '',
      phase: typeof status.phase === 'string' ? status.phase : 'Pending',
      ambient,
      enrolled: enrolled.has(podWorkloadUid(CLUSTER_ID, namespace, name)),
    };
  });
}

export function printPods(pods: readonly ApiPodView[], out: (line: string) => void): void {
  out('pods:');
  for (const p of [...pods].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`))) {
    const mesh = p.enrolled ? 'enrolled' : p.ambient ? 'enrolling' : 'not in mesh';
    out(
      `  ${`${p.namespace}/${p.name}`.padEnd(40)} ${p.node.padEnd(8)} ${p.ip.padEnd(14)} ${p.phase.padEnd(9)} ${mesh}`,
    );
  }
}

function nameOf(o: Json): string {
  return isJson(o.metadata) && typeof o.metadata.name === 'string' ? o.metadata.name : '';
}

function stringMap(v: unknown): Map<string, string> {
  return new Map(isJson(v) ? Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string') : []);
}

function labelsOf(o: Json): Map<string, string> {
  return stringMap(isJson(o.metadata) ? o.metadata.labels : undefined);
}

function annotationsOf(o: Json): Map<string, string> {
  return stringMap(isJson(o.metadata) ? o.metadata.annotations : undefined);
}

async function addr(): Promise<string> {
  return `127.0.0.1:${(await freePorts(1))[0]}`;
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await res.text();
  return res.ok;
}

/** Waits for `check` (wait-ready.ts), failing at once when `pid` (logging to `<log>.log`) died. */
function waitUntil<T>(
  layout: { readonly logDir: string },
  what: string,
  log: string,
  pid: number,
  check: () => Promise<T | false>,
): Promise<T> {
  return waitReady({ what, pid, logDir: layout.logDir, log, deadline: Date.now() + READY_TIMEOUT_MS, check });
}
