// `ferry controller --cluster <name>`: the local cluster's controller (src/local-cluster/controller/): manifests →
// mesh state → delta xDS + node-bound CA + enrollment, plus the admin API behind `ferry status/apply/delete/
// label`. Started by `ferry up -f` as a journaled system process; runs until SIGTERM/SIGINT. Its addresses,
// tokens and manifest paths come from the cluster's mesh.json (written by `ferry up`).

import { join } from 'node:path';
import { parseClusterProcessArgs } from '../local-cluster/cli-env.ts';
import { startAdminApi } from '../local-cluster/controller/admin-api.ts';
import { startLocalController } from '../local-cluster/controller/local-controller.ts';
import { DrainController } from '../runtime/drain.ts';
import { createLogger, parseLogLevel } from '../runtime/logger.ts';
import { installSignalHandlers } from '../runtime/signals.ts';

const HELP = `usage: ferry controller [--cluster <name>] [--log-level info]

Runs the local cluster's controller (started by ferry up -f; restart it the same way after a crash).
`;

export async function run(argv: readonly string[]): Promise<number> {
  const args = parseClusterProcessArgs(argv, HELP);
  if (args === null) return 0;
  const { env } = args;
  const logger = createLogger({ component: 'controller', level: parseLogLevel(args.logLevel) });
  const controller = await startLocalController(join(env.stateRoot, args.cluster), logger);
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
