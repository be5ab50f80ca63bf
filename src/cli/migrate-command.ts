// `ferry migrate check|convert`: Istio sidecar-mode configuration → ambient (docs/migration.md). Reads
// manifests (-f, repeatable) and/or a Kubernetes API (--kubeconfig), builds one plan, and prints its
// findings (check) or writes the converted objects (convert). Exit codes: 0 ready, 1 blockers found,
// 2 usage error or unreadable input.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MigrateError } from '../migrate/errors.ts';
import { buildInventory, type InputDocument } from '../migrate/inventory.ts';
import { countBySeverity, planMigration } from '../migrate/plan.ts';
import { readInputFiles } from '../migrate/read-files.ts';
import { renderJson, renderTable, renderYaml, yamlHeader } from '../migrate/render.ts';
import type { InputProblem, MigrationPlan } from '../migrate/types.ts';

const HELP = `usage: ferry migrate check   [-f FILE|DIR]... [--kubeconfig PATH] [-n NS] [--json] [--verbose]
       ferry migrate convert [-f FILE|DIR]... [--kubeconfig PATH] [-n NS] [-o DIR] [--json]

Reads Istio sidecar-mode configuration (VirtualService, DestinationRule, AuthorizationPolicy,
PeerAuthentication, EnvoyFilter, Sidecar, … plus the Services, Deployments and Namespaces they refer to)
from manifests (-f, repeatable; directories are read non-recursively) or from a cluster (--kubeconfig).

  check     per namespace, what converts, what changes and what blocks the move to ambient
            (table, or --json); exit 1 when there are blockers
  convert   the ambient equivalents as YAML to review and commit: HTTPRoutes, per-subset Services,
            the waypoint Gateway and namespace label, AuthorizationPolicies with targetRefs; to stdout
            (report on stderr) or -o DIR (<namespace>.yaml + report.json); exit 1 when there are blockers

  -n, --namespace NS  only this namespace's findings and objects
  --default-namespace NS  namespace of manifest objects that name none (default: default)

       ferry migrate namespace NS [-f FILE|DIR]... [--cluster C]   (local cluster: sidecars → ambient, live)
       ferry migrate rollback  NS [--cluster C]                    (back to sidecars)
See ferry migrate namespace --help and docs/migration.md.
`;

export async function run(argv: readonly string[]): Promise<number> {
  const code = await runMigrate(argv);
  // The Kubernetes client keeps its HTTP connections alive (and the process with them) for seconds after
  // the last list; there is nothing left to do, and stdout/stderr writes to pipes and files are
  // synchronous on Linux, so leave now.
  if (argv.includes('--kubeconfig') || argv.some((a) => a.startsWith('--kubeconfig='))) process.exit(code);
  return code;
}

async function runMigrate(argv: readonly string[]): Promise<number> {
  const sub = argv[0];
  if (sub === 'namespace' || sub === 'rollback') {
    // Their own options (--cluster …): parsed there.
    const { runNamespaceMigration } = await import('./migrate-namespace-command.ts');
    return runNamespaceMigration(sub, argv.slice(1));
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    process.stderr.write(`ferry migrate: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const command = positionals[0];
  if ((command !== 'check' && command !== 'convert') || positionals.length !== 1) {
    process.stderr.write(HELP);
    return 2;
  }
  const files = values.filename ?? [];
  if (files.length === 0 && values.kubeconfig === undefined) {
    process.stderr.write('ferry migrate: give the configuration with -f FILE|DIR and/or --kubeconfig PATH\n');
    return 2;
  }
  let plan: MigrationPlan;
  try {
    plan = await buildPlan(files, values.kubeconfig, values['default-namespace'] ?? 'default');
  } catch (err) {
    if (err instanceof MigrateError) {
      process.stderr.write(`ferry migrate: ${err.code}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (values.namespace !== undefined) plan = onlyNamespace(plan, values.namespace);
  const blockers = countBySeverity(plan).blocker;
  if (command === 'check') {
    process.stdout.write(
      values.json === true ? renderJson(plan, false) : renderTable(plan, { verbose: values.verbose === true }),
    );
    return blockers > 0 ? 1 : 0;
  }
  if (values.output !== undefined) {
    try {
      await writeOutputDir(values.output, plan);
    } catch (err) {
      if (!(err instanceof MigrateError)) throw err;
      process.stderr.write(`ferry migrate: ${err.code}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(renderTable(plan, { verbose: false }));
  } else {
    process.stdout.write(renderYaml(plan.objects, yamlHeader(plan)));
    process.stderr.write(values.json === true ? renderJson(plan, false) : renderTable(plan, { verbose: false }));
  }
  return blockers > 0 ? 1 : 0;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      filename: { type: 'string', short: 'f', multiple: true },
      kubeconfig: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      'default-namespace': { type: 'string' },
      output: { type: 'string', short: 'o' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean', short: 'v' },
    },
  });
}

async function buildPlan(
  files: readonly string[],
  kubeconfig: string | undefined,
  defaultNamespace: string,
): Promise<MigrationPlan> {
  const documents: InputDocument[] = [];
  const problems: InputProblem[] = [];
  if (files.length > 0) {
    const decoded = await readInputFiles(files);
    documents.push(...decoded.documents);
    problems.push(...decoded.problems);
  }
  if (kubeconfig !== undefined) {
    const { readFromCluster } = await import('../migrate/kube-read.ts');
    documents.push(...(await readFromCluster(kubeconfig)));
  }
  const inv = buildInventory(documents, defaultNamespace);
  return planMigration({ ...inv, problems: [...problems, ...inv.problems] });
}

function onlyNamespace(plan: MigrationPlan, ns: string): MigrationPlan {
  return {
    objects: plan.objects.filter((o) => o.namespace === ns),
    findings: plan.findings.filter((f) => f.namespace === ns || f.namespace === ''),
  };
}

async function writeOutputDir(dir: string, plan: MigrationPlan): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    const namespaces = [...new Set(plan.objects.map((o) => o.namespace))];
    for (const ns of namespaces) {
      const objects = plan.objects.filter((o) => o.namespace === ns);
      await writeFile(join(dir, `${ns}.yaml`), renderYaml(objects, yamlHeader(plan)));
    }
    await writeFile(join(dir, 'report.json'), renderJson(plan, false));
  } catch (err) {
    throw new MigrateError('FERRY_MIGRATE_WRITE_FAILED', `cannot write ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
