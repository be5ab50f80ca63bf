// `ferry kubelet --cluster NAME --node NODE`: the kubelet of one node of a bare local cluster
// (local-cluster/kubelet/kubelet.ts), started by `ferry up --bare` as a journaled system process and
// restarted by the supervisor. Runs until SIGTERM/SIGINT; the pods keep running when it stops.
import { parseArgs } from 'node:util';
import { isJson, KubeClient, loadKubeConfig } from '../kube/client.ts';
import { kubeconfigPath } from '../local-cluster/bare-files.ts';
import { clusterCliEnv } from '../local-cluster/cli-env.ts';
import { requireCgroup2 } from '../local-cluster/cluster.ts';
import { ClusterError } from '../local-cluster/errors.ts';
import { Kubelet } from '../local-cluster/kubelet/kubelet.ts';
import { nodeIndexOf } from '../local-cluster/kubelet/naming.ts';
import { parseNodePodCidr } from '../local-cluster/kubelet/node-status.ts';
import { clusterLayout } from '../local-cluster/layout.ts';
import { StateJournal } from '../local-cluster/state.ts';
import { DrainController } from '../runtime/drain.ts';
import { createLogger, parseLogLevel } from '../runtime/logger.ts';
import { installSignalHandlers } from '../runtime/signals.ts';

const HELP = `usage: ferry kubelet --node <node-N> [--cluster <name>] [--log-level info]

Runs the pods the API server binds to the node (started by ferry up --bare).
`;

export async function run(argv: readonly string[]): Promise<number> {
  const env = clusterCliEnv();
  const { values } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      cluster: { type: 'string', default: env.defaultCluster },
      node: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const node = values.node ?? '';
  const nodeIndex = nodeIndexOf(node);
  if (nodeIndex === null)
    throw new ClusterError('FERRY_CLUSTER_INVALID_SPEC', `--node: ${JSON.stringify(node)} is not node-<n>`);
  const log = createLogger({ component: `kubelet-${node}`, level: parseLogLevel(values['log-level']) });
  const layout = clusterLayout(values.cluster, { stateRoot: env.stateRoot, cgroup2Root: requireCgroup2() });
  const config = loadKubeConfig({ kubeconfigPath: kubeconfigPath(layout.stateDir) });
  const client = new KubeClient(config);
  const nodeObj = await client.get(`/api/v1/nodes/${node}`);
  const cidr = parseNodePodCidr(isJson(nodeObj.spec) ? nodeObj.spec.podCIDR : undefined);
  if (cidr === null || cidr.node !== nodeIndex) {
    throw new ClusterError('FERRY_CLUSTER_INVALID_SPEC', `node ${node} has no podCIDR <a.b>.${nodeIndex}.0/24`);
  }
  const drain = new DrainController();
  using _signals = installSignalHandlers({ drain, drainDeadlineMs: 0, logger: log });
  const kubelet = new Kubelet({
    ctx: {
      layout,
      journal: new StateJournal(layout.stateDir),
      nodeIndex,
      nodeName: node,
      cidrBase: cidr.base,
      gateway: `${cidr.base}.255.254`,
      ferryArgv: env.ferryArgv,
      baseEnv: env.baseEnv,
      apiServerPort: Number(new URL(client.server).port),
    },
    client,
    config,
    log,
    signal: drain.signal,
    hostIp: '127.0.0.1',
  });
  await kubelet.run();
  client.close();
  log.info({}, 'kubelet stopped');
  log.flush();
  return 0;
}
