// `ferry down [--cluster name]`: removes every object of a local cluster (local-cluster/teardown.ts), also
// after a crash or kill -9. Idempotent: a second run finds nothing and succeeds.
import { parseArgs } from 'node:util';
import { clusterCliEnv } from '../local-cluster/cli-env.ts';
import { requireCgroup2, requireRoot } from '../local-cluster/cluster.ts';
import { clusterLayout } from '../local-cluster/layout.ts';
import { teardownCluster } from '../local-cluster/teardown.ts';

const HELP = `usage: ferry down [--cluster <name>]

Removes the local cluster's processes, BPF pins, network namespaces (and veths), cgroups and state,
also after a crash. Safe to run twice. Default cluster: $FERRY_CLUSTER or "ferry".
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
  requireRoot();
  const layout = clusterLayout(values.cluster, { stateRoot: env.stateRoot, cgroup2Root: requireCgroup2() });
  const report = await teardownCluster(layout, {
    signal: AbortSignal.timeout(60_000),
    progress: (line) => process.stdout.write(`  ${line}\n`),
  });
  for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
  for (const r of report.removed) process.stdout.write(`  removed ${r}\n`);
  process.stdout.write(
    report.removed.length === 0
      ? `cluster ${layout.name}: nothing to remove\n`
      : `cluster ${layout.name}: down (${report.removed.length} objects removed)\n`,
  );
  return 0;
}
