// `ferry kubeconfig [--cluster NAME]`: prints the path of a bare local cluster's kubeconfig (written by
// its API server), for `kubectl --kubeconfig "$(ferry kubeconfig)"` or `export KUBECONFIG=…`.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { kubeconfigPath } from '../local-cluster/bare-files.ts';
import { clusterCliEnv } from '../local-cluster/cli-env.ts';
import { ClusterError } from '../local-cluster/errors.ts';

const HELP = `usage: ferry kubeconfig [--cluster <name>]

Prints the path of the cluster's kubeconfig (ferry up --bare writes it; 0600, root only).
`;

export async function run(argv: readonly string[]): Promise<number> {
  const env = clusterCliEnv();
  const { values } = parseArgs({
    args: [...argv],
    options: { help: { type: 'boolean', short: 'h' }, cluster: { type: 'string', default: env.defaultCluster } },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const path = kubeconfigPath(join(env.stateRoot, values.cluster));
  if (!existsSync(path)) {
    throw new ClusterError(
      'FERRY_CLUSTER_NOT_FOUND',
      `cluster ${values.cluster} has no kubeconfig (${path}); run ferry up --bare --cluster ${values.cluster}`,
    );
  }
  process.stdout.write(`${path}\n`);
  return 0;
}
