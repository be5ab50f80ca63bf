// `ferry up`: brings up a local cluster (DESIGN.md §7). This is the runtime skeleton: it builds the nodes,
// pods and containers from a runtime spec (`--spec`, local-cluster/spec-file.ts) and records everything
// for `ferry down`. Seams for the next steps (see local-cluster/cluster.ts): the controller turns
// manifests into a ClusterSpec + mesh state and is started with `cluster.startSystemProcess('controller',
// …)`; one ztunnel per node with `startSystemProcess('ztunnel-node-N', …)`, enrolling the node's pods.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { clusterCliEnv } from './local-cluster/cli-env.ts';
import { createCluster, requireRoot } from './local-cluster/cluster.ts';
import { ClusterError } from './local-cluster/errors.ts';
import { parseClusterSpec } from './local-cluster/spec-file.ts';

const HELP = `usage: ferry up --spec <cluster.yaml> [--cluster <name>] [--nodes N]

Creates the local cluster: per pod a network namespace with a veth on a shared bridge and a cgroup,
containers started inside (common images map to built-in test apps). Needs root. Then:
  ferry exec <ns>/<pod> -- curl http://<pod ip>:<port>/     ferry down [--cluster <name>]
`;

export async function run(argv: readonly string[]): Promise<number> {
  const env = clusterCliEnv();
  const { values } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      spec: { type: 'string' },
      file: { type: 'string', short: 'f', multiple: true },
      cluster: { type: 'string' },
      nodes: { type: 'string' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  requireRoot(); // before reading anything: the clearest message for the most common mistake
  if (values.file !== undefined) {
    // TODO(#4): manifests go through the controller's manifest source and translation.
    throw new ClusterError(
      'FERRY_CLUSTER_INVALID_SPEC',
      '-f <manifests> needs the controller (not wired into the local runtime yet); use --spec <cluster.yaml>',
    );
  }
  if (values.spec === undefined) {
    process.stderr.write(HELP);
    return 2;
  }
  const nodes = values.nodes === undefined ? undefined : Number(values.nodes);
  if (nodes !== undefined && !Number.isInteger(nodes)) {
    throw new ClusterError('FERRY_CLUSTER_INVALID_SPEC', `--nodes: ${values.nodes} is not an integer`);
  }
  const spec = parseClusterSpec(await readFile(values.spec, 'utf8'), {
    name: values.cluster ?? (process.env.FERRY_CLUSTER === undefined ? undefined : env.defaultCluster),
    ...(nodes === undefined ? {} : { nodes }),
  });
  process.stdout.write(`creating cluster ${spec.name} (${spec.nodes} nodes, ${spec.pods.length} pods)\n`);
  const cluster = await createCluster(spec, {
    stateRoot: env.stateRoot,
    ferryArgv: env.ferryArgv,
    baseEnv: env.baseEnv,
    signal: AbortSignal.timeout(300_000),
    progress: (line) => process.stdout.write(`  ${line}\n`),
  });
  cluster.markReady();
  process.stdout.write(`cluster ${spec.name} is up; logs in ${cluster.layout.logDir}\n`);
  for (const pod of cluster.pods) {
    process.stdout.write(`  ${`${pod.namespace}/${pod.name}`.padEnd(32)} node-${pod.node}  ${pod.ip}\n`);
  }
  return 0;
}
