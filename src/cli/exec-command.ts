// `ferry exec [--cluster name] <ns>/<pod> -- <cmd…>`: runs a command inside a pod of the local cluster, in
// its cgroup and netns, so the BPF redirector captures it like the pod's own processes. `curl` runs the
// built-in client and `ferry` this Ferry (local-cluster/images.ts). Exit code is the command's.
import { once } from 'node:events';
import { constants } from 'node:os';
import { parseArgs } from 'node:util';
import { clusterCliEnv } from '../local-cluster/cli-env.ts';
import { requireCgroup2, requireRoot } from '../local-cluster/cluster.ts';
import { ClusterError } from '../local-cluster/errors.ts';
import { mapCommand } from '../local-cluster/images.ts';
import { clusterLayout } from '../local-cluster/layout.ts';
import { spawnInPod } from '../local-cluster/pods.ts';
import { execCgroupDir } from '../local-cluster/sidecars.ts';
import { loadState, podsOf } from '../local-cluster/state.ts';

const HELP = `usage: ferry exec [--cluster <name>] <namespace>/<pod> -- <command> [args…]

Runs the command in the pod's cgroup (with a sidecar: its first app container's) and network namespace. \`curl\` is the built-in client
(ferry testapp curl), \`ferry\` is this Ferry; other commands run from the host's PATH.
`;

export async function run(argv: readonly string[]): Promise<number> {
  const env = clusterCliEnv();
  const dashes = argv.indexOf('--');
  const own = dashes === -1 ? argv : argv.slice(0, dashes);
  const command = dashes === -1 ? [] : argv.slice(dashes + 1);
  const { values, positionals } = parseArgs({
    args: [...own],
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' }, cluster: { type: 'string', default: env.defaultCluster } },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const [target] = positionals;
  const [cmd, ...args] = command;
  if (positionals.length !== 1 || target === undefined || cmd === undefined) {
    process.stderr.write(HELP);
    return 2;
  }
  const slash = target.indexOf('/');
  const [namespace, name] = slash === -1 ? ['default', target] : [target.slice(0, slash), target.slice(slash + 1)];
  requireRoot();
  const layout = clusterLayout(values.cluster, { stateRoot: env.stateRoot, cgroup2Root: requireCgroup2() });
  const state = loadState(layout.stateDir);
  if (state.records.length === 0) {
    throw new ClusterError(
      'FERRY_CLUSTER_NOT_FOUND',
      `no cluster ${layout.name} (no state in ${layout.stateDir}); run ferry up`,
    );
  }
  // The newest record: a bare cluster's kubelet may have run an earlier pod of the same name.
  const pod = podsOf(state).findLast((p) => p.namespace === namespace && p.name === name);
  if (pod === undefined) {
    const known = podsOf(state).map((p) => `${p.namespace}/${p.name}`);
    throw new ClusterError(
      'FERRY_CLUSTER_POD_NOT_FOUND',
      `cluster ${layout.name} has no pod ${namespace}/${name} (pods: ${known.join(', ') || 'none'})`,
    );
  }
  const child = spawnInPod(
    { netnsPath: pod.netnsPath, cgroupDir: execCgroupDir(state.records, pod) },
    mapCommand(cmd, args, env.ferryArgv),
    {
      env: { ...env.baseEnv, POD_NAME: pod.name, POD_NAMESPACE: pod.namespace, POD_IP: pod.ip, HOSTNAME: pod.name },
      stdio: 'inherit',
    },
  );
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  if (code === 97 || code === 98) {
    process.stderr.write(`ferry exec: could not enter pod ${namespace}/${name} (is the cluster still up?)\n`);
  }
  return code ?? 128 + (signal === null ? 0 : signalNumber(signal));
}

function signalNumber(signal: NodeJS.Signals): number {
  return constants.signals[signal] ?? 1;
}
