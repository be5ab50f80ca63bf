// `ferry controller --kubeconfig PATH | --source kubernetes`: the controller on a Kubernetes API
// (startKubernetesController; arguments in kube-controller-config.ts). `ferry controller --cluster <name>`:
// the local cluster's controller (src/local-cluster/controller/): manifests →
// mesh state → delta xDS + node-bound CA + enrollment, plus the admin API behind `ferry status/apply/delete/
// label`. Started by `ferry up -f` as a journaled system process; runs until SIGTERM/SIGINT. Its addresses,
// tokens and manifest paths come from the cluster's mesh.json (written by `ferry up`).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type KubernetesController, startKubernetesController } from '../controller/kubernetes-controller.ts';
import { createControllerMetrics } from '../controller/metrics.ts';
import { parseClusterProcessArgs } from '../local-cluster/cli-env.ts';
import { startAdminApi } from '../local-cluster/controller/admin-api.ts';
import { startLocalController } from '../local-cluster/controller/local-controller.ts';
import { type LocalMeshConfig, MESH_FILE, readMeshConfig } from '../local-cluster/controller/mesh-files.ts';
import { startPodGatewayRelay } from '../local-cluster/pod-gateway-relay.ts';
import { apiControllerArgs } from '../local-cluster/system-processes.ts';
import { DrainController } from '../runtime/drain.ts';
import { createLogger, type Logger, parseLogLevel } from '../runtime/logger.ts';
import { startProcessServers } from '../runtime/process-servers.ts';
import { ReadinessTracker } from '../runtime/readiness.ts';
import { installSignalHandlers } from '../runtime/signals.ts';
import { parseKubeControllerArgs, wantsKubernetes } from './kube-controller-config.ts';

const HELP = `usage: ferry controller [--cluster <name>] [--log-level info]
       ferry controller --kubeconfig PATH | --source kubernetes [options]   (--help for them)

Runs the local cluster's controller (started by ferry up -f; restart it the same way after a crash), or,
with --kubeconfig / --source kubernetes, the controller on a Kubernetes API.
`;

export async function run(argv: readonly string[]): Promise<number> {
  if (wantsKubernetes(argv)) return runKubernetes(argv);
  const args = parseClusterProcessArgs(argv, HELP);
  if (args === null) return 0;
  const { env } = args;
  // A cluster on its Kubernetes API (ferry up --api): the controller on that API, with mesh.json's addresses.
  const stateDir = join(env.stateRoot, args.cluster);
  if (existsSync(join(stateDir, MESH_FILE))) {
    const config = await readMeshConfig(stateDir);
    const onApi = apiControllerArgs(stateDir, config);
    if (onApi !== null) {
      return runKubernetes([...onApi.slice(1), '--log-level', args.logLevel], podGatewayRelay(config));
    }
  }
  const logger = createLogger({ component: 'controller', level: parseLogLevel(args.logLevel) });
  const controller = await startLocalController(stateDir, logger);
  const admin = await startAdminApi(controller);
  logger.info({ admin: admin.address }, 'controller admin API listening');
  const drain = new DrainController();
  using _signals = installSignalHandlers({ drain, drainDeadlineMs: 0, logger });
  await new Promise((resolve) => drain.signal.addEventListener('abort', resolve, { once: true }));
  await admin.close();
  await controller.close();
  logger.info({}, 'controller stopped');
  logger.flush();
  return 0;
}

/** What else the process serves beside the controller (the local cluster's pod gateway relay). */
type Companion = (log: Logger) => Promise<{ close(): Promise<void> }>;

/** The relay that lets the pods of a local API cluster reach this controller (mesh.json `api.podGateway`). */
function podGatewayRelay(config: LocalMeshConfig): Companion | undefined {
  const gw = config.api?.podGateway;
  if (gw === undefined) return undefined;
  const loopback = (hostPort: string) => ({
    host: '127.0.0.1',
    port: Number(hostPort.slice(hostPort.lastIndexOf(':') + 1)),
  });
  return (log) =>
    startPodGatewayRelay({
      netnsPath: gw.netnsPath,
      address: gw.address,
      routes: [
        { port: gw.xdsPort, target: loopback(config.controller.xds) },
        { port: gw.caPort, target: loopback(config.controller.ca) },
      ],
      log: log.child({ scope: 'pod-gateway' }),
    });
}

async function runKubernetes(argv: readonly string[], companion?: Companion): Promise<number> {
  const args = parseKubeControllerArgs(argv, process.env);
  if (args === null) return 0;
  const logger = createLogger({ component: 'controller', level: parseLogLevel(args.logLevel) });
  const options = await args.build(logger);
  const drain = new DrainController();
  const readiness = new ReadinessTracker();
  let controller: KubernetesController | null = null;
  // The servers come first: /healthz/live answers while the informers sync and the CA loads.
  await using servers = await startProcessServers({
    metricsAddress: args.servers.metrics,
    readinessAddress: args.servers.readiness,
    adminAddress: args.servers.admin,
    registry: createControllerMetrics({
      leading: () => controller?.elector?.leading ?? false,
      xdsClients: () => controller?.xds.clients().length ?? 0,
    }),
    readiness,
    logger,
    drain,
    drainDeadlineMs: 0,
    configDump: () => ({
      leading: controller?.elector?.leading ?? false,
      xdsClients: controller?.xds.clients() ?? [],
      diagnostics: controller?.diagnostics.length ?? 0,
    }),
  });
  logger.info(
    { admin: servers.admin.address, metrics: servers.metrics.address, readiness: servers.readiness.address },
    'admin, metrics and readiness servers listening',
  );
  using _signals = installSignalHandlers({ drain, drainDeadlineMs: 0, logger });
  controller = await startKubernetesController({ ...options, readiness });
  try {
    const beside = await companion?.(logger);
    await new Promise((resolve) => drain.signal.addEventListener('abort', resolve, { once: true }));
    await beside?.close();
  } finally {
    await controller.close(); // releases the Lease: another replica takes over at once
  }
  logger.info({}, 'controller stopped');
  logger.flush();
  return 0;
}
