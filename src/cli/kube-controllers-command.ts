// `ferry kube-controllers --cluster NAME`: the scheduler, workload controllers and garbage collector of a
// bare local cluster (local-cluster/kube-controllers/), started by `ferry up --bare` and restarted by the
// supervisor. Runs until SIGTERM/SIGINT.
import { join } from 'node:path';
import { KubeClient, loadKubeConfig } from '../kube/client.ts';
import { kubeconfigPath } from '../local-cluster/bare-files.ts';
import { parseClusterProcessArgs } from '../local-cluster/cli-env.ts';
import { runKubeControllers } from '../local-cluster/kube-controllers/kube-controllers.ts';
import { DrainController } from '../runtime/drain.ts';
import { createLogger, parseLogLevel } from '../runtime/logger.ts';
import { installSignalHandlers } from '../runtime/signals.ts';

const HELP = `usage: ferry kube-controllers [--cluster <name>] [--log-level info]

Scheduler, Deployment/ReplicaSet/DaemonSet controllers and garbage collector of a bare local cluster
(started by ferry up --bare).
`;

export async function run(argv: readonly string[]): Promise<number> {
  const args = parseClusterProcessArgs(argv, HELP);
  if (args === null) return 0;
  const log = createLogger({ component: 'kube-controllers', level: parseLogLevel(args.logLevel) });
  const config = loadKubeConfig({ kubeconfigPath: kubeconfigPath(join(args.env.stateRoot, args.cluster)) });
  const client = new KubeClient(config);
  const drain = new DrainController();
  using _signals = installSignalHandlers({ drain, drainDeadlineMs: 0, logger: log });
  await runKubeControllers({ client, config, log, signal: drain.signal });
  client.close();
  log.info({}, 'kube-controllers stopped');
  log.flush();
  return 0;
}
