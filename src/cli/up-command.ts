// `ferry up`: brings up a local cluster (docs/architecture.md "Local cluster"). With `-f <manifests>` the whole mesh: pods from
// Kubernetes YAML, the controller and one ztunnel per node (local-cluster/mesh-up.ts). With `--spec` only
// the runtime: nodes, pods and containers from a runtime spec (local-cluster/spec-file.ts), no mesh.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { apiMeshUp } from '../local-cluster/api-mesh-up.ts';
import { bareAlreadyUp, startBareCluster } from '../local-cluster/bare-up.ts';
import { clusterCliEnv } from '../local-cluster/cli-env.ts';
import { createCluster, requireRoot } from '../local-cluster/cluster.ts';
import { ClusterError } from '../local-cluster/errors.ts';
import { meshUp } from '../local-cluster/mesh-up.ts';
import { parseClusterSpec } from '../local-cluster/spec-file.ts';

const HELP = `usage: ferry up -f <dir|file> [-f …] [--cluster <name>] [--nodes N] [--trust-domain td]
       ferry up --spec <cluster.yaml> [--cluster <name>] [--nodes N]
       ferry up --bare [--cluster <name>] [--nodes N]
       ferry up --api -f <dir|file> [-f …] [--cluster <name>] [--nodes N] [--trust-domain td]

-f: runs the mesh from Kubernetes manifests: pods (network namespace + veth on a shared bridge +
cgroup, containers started inside; common images map to built-in test apps), the controller, one
ztunnel per node (BPF in-pod capture), pods enrolled by istio.io/dataplane-mode. --nodes default 2.
--spec: only the pods of a runtime spec, no mesh.
--bare: a local Kubernetes without the mesh: API server, one kubelet per node, scheduler and
Deployment/ReplicaSet/DaemonSet controllers; drive it with kubectl --kubeconfig "$(ferry kubeconfig)".
--api -f: the mesh on such a cluster, as on a real one: the manifests go into its API, the controller
watches it, each node's ztunnel enrolls the ambient pods of its node from it; kubectl works throughout.
Needs root. Then:
  ferry status    ferry exec <ns>/<pod> -- curl http://<svc or ip>:<port>/    ferry down
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
      'trust-domain': { type: 'string', default: 'cluster.local' },
      bare: { type: 'boolean', default: false },
      api: { type: 'boolean', default: false },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  requireRoot(); // before reading anything: the clearest message for the most common mistake
  const nodes = values.nodes === undefined ? undefined : Number(values.nodes);
  if (nodes !== undefined && !Number.isInteger(nodes)) {
    throw new ClusterError('FERRY_CLUSTER_INVALID_SPEC', `--nodes: ${values.nodes} is not an integer`);
  }
  if (values.bare === true) {
    if (values.file !== undefined || values.spec !== undefined) {
      throw new ClusterError('FERRY_CLUSTER_INVALID_SPEC', '--bare takes no -f or --spec');
    }
    const cluster = values.cluster ?? env.defaultCluster;
    const out = (line: string) => process.stdout.write(`${line}\n`);
    if (await bareAlreadyUp(env, cluster, out)) return 0;
    const bare = await startBareCluster(env, { cluster, nodes: nodes ?? 2, out });
    out(`cluster ${cluster} is up (bare): kubectl --kubeconfig ${bare.kubeconfigPath} get nodes`);
    out(`  kubeconfig: ferry kubeconfig --cluster ${cluster}    remove: ferry down --cluster ${cluster}`);
    return 0;
  }
  if (values.file !== undefined) {
    if (values.spec !== undefined) throw new ClusterError('FERRY_CLUSTER_INVALID_SPEC', '-f and --spec are exclusive');
    if (values.api === true) {
      return apiMeshUp(env, {
        cluster: values.cluster ?? env.defaultCluster,
        nodes: nodes ?? 2,
        paths: values.file,
        trustDomain: values['trust-domain'],
        out: (line) => process.stdout.write(`${line}\n`),
      });
    }
    return meshUp(env, {
      cluster: values.cluster ?? env.defaultCluster,
      nodes: nodes ?? 2,
      paths: values.file,
      trustDomain: values['trust-domain'],
      out: (line) => process.stdout.write(`${line}\n`),
    });
  }
  if (values.spec === undefined) {
    process.stderr.write(HELP);
    return 2;
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
