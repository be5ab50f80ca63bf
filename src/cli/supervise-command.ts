// `ferry supervise --cluster <name>`: the local cluster's supervisor (local-cluster/supervisor.ts), started
// by `ferry up -f` as a journaled system process: restarts dead ztunnels and waypoints with the same
// arguments, with a short crash-loop backoff, and records restarts for `ferry status`. Runs until
// SIGTERM/SIGINT or `ferry down`.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readBareConfig } from '../local-cluster/bare-files.ts';
import { parseClusterProcessArgs } from '../local-cluster/cli-env.ts';
import { requireCgroup2 } from '../local-cluster/cluster.ts';
import { type LocalMeshConfig, MESH_FILE, readMeshConfig } from '../local-cluster/controller/mesh-files.ts';
import { clusterLayout } from '../local-cluster/layout.ts';
import { runSupervisor } from '../local-cluster/supervisor.ts';
import { DrainController } from '../runtime/drain.ts';
import { createLogger, parseLogLevel } from '../runtime/logger.ts';
import { installSignalHandlers } from '../runtime/signals.ts';

const HELP = `usage: ferry supervise [--cluster <name>] [--log-level info]

Restarts the local cluster's dead ztunnels, waypoints, DNS, and a bare cluster's API server, kubelets
and kube-controllers (started by ferry up -f / --bare; ferry up starts it
again when it is not running). Restarts per process: ferry status.
`;

export async function run(argv: readonly string[]): Promise<number> {
  const args = parseClusterProcessArgs(argv, HELP);
  if (args === null) return 0;
  const { env } = args;
  const log = createLogger({ component: 'supervisor', level: parseLogLevel(args.logLevel) });
  const layout = clusterLayout(args.cluster, { stateRoot: env.stateRoot, cgroup2Root: requireCgroup2() });
  const stateDir = join(env.stateRoot, args.cluster);
  // A bare cluster has no mesh (yet): nothing but its Kubernetes processes (bare-files.ts) to supervise.
  const config =
    !existsSync(join(stateDir, MESH_FILE)) && readBareConfig(stateDir) !== null
      ? emptyMeshConfig(args.cluster)
      : await readMeshConfig(stateDir);
  const drain = new DrainController();
  using _signals = installSignalHandlers({ drain, drainDeadlineMs: 0, logger: log });
  await runSupervisor({ env, layout, config, log, signal: drain.signal });
  log.info({}, 'supervisor stopped');
  log.flush();
  return 0;
}

function emptyMeshConfig(cluster: string): LocalMeshConfig {
  return {
    cluster,
    trustDomain: 'cluster.local',
    manifests: [],
    controller: { xds: '', ca: '', admin: '' },
    nodes: [],
  };
}
