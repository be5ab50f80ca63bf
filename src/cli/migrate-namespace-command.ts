// `ferry migrate namespace NS` and `ferry migrate rollback NS` on a local cluster (`ferry up -f`): plan
// from the recorded phases (src/migrate/namespace-plan.ts), then run the steps one by one on the live
// cluster (src/local-cluster/migration.ts) with a line of progress each. Re-running continues where a stop
// left off. Exit codes: 0 done, 1 blocked or a step failed, 2 usage error.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FerryError } from '../errors.ts';
import { clusterCliEnv } from '../local-cluster/cli-env.ts';
import type { MeshStatus } from '../local-cluster/controller/admin-api.ts';
import { controllerRequest } from '../local-cluster/controller-client.ts';
import {
  type LiveStep,
  type MigrationContext,
  readNamespaceForMigration,
  runLiveStep,
} from '../local-cluster/migration.ts';
import { buildInventory } from '../migrate/inventory.ts';
import { describeStep, labelChanges, type MigrationStep, planNamespaceMigration } from '../migrate/namespace-plan.ts';
import { planMigration } from '../migrate/plan.ts';
import { readInputFiles } from '../migrate/read-files.ts';
import type { MigrationPlan } from '../migrate/types.ts';

export const NAMESPACE_HELP = `usage: ferry migrate namespace NS [-f FILE|DIR]... [--cluster C] [--step-timeout-ms N]
       ferry migrate rollback  NS [--cluster C]

Moves the pods of namespace NS of a local cluster (ferry up -f) from their sidecars to the node ztunnels,
live (no pod restart), or back. Per pod: enroll in the node ztunnel under the running sidecar, then stop
the sidecar (its programs run first until they are gone, so the pod is captured throughout); rollback
starts the sidecar over the node's capture, then unenrolls the pod from the node. The namespace is
labelled istio.io/dataplane-mode=ambient first (rollback: istio-injection=enabled last). Progress is
recorded in the cluster's state dir (migration.json): a re-run continues where a stop left off.

  -f FILE|DIR   the Istio configuration of NS (as for ferry migrate check): the move is refused while it
                has blockers or while the objects ferry migrate convert writes for NS are not applied
                (and HTTPRoutes Accepted); without -f that check is skipped (a line says so)
`;

export async function runNamespaceMigration(command: 'namespace' | 'rollback', argv: readonly string[]) {
  const env = clusterCliEnv();
  let values: ReturnType<typeof parse>['values'];
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv, env.defaultCluster));
  } catch (err) {
    process.stderr.write(`ferry migrate ${command}: ${(err as Error).message}\n\n${NAMESPACE_HELP}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(NAMESPACE_HELP);
    return 0;
  }
  const namespace = positionals[0];
  const timeout = Number(values['step-timeout-ms'] ?? '60000');
  if (positionals.length !== 1 || namespace === undefined || !Number.isInteger(timeout) || timeout <= 0) {
    process.stderr.write(NAMESPACE_HELP);
    return 2;
  }
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const ctx: MigrationContext = {
    stateDir: join(env.stateRoot, values.cluster),
    env,
    namespace,
    direction: command === 'namespace' ? 'forward' : 'rollback',
    stepTimeoutMs: timeout,
  };
  let midStep = false;
  try {
    const snapshot = await readNamespaceForMigration(ctx);
    const pre =
      ctx.direction === 'forward'
        ? await preconditions(ctx, values.filename ?? [], out)
        : { blockers: [], missingObjects: [] };
    const plan = planNamespaceMigration({
      namespace,
      direction: ctx.direction,
      pods: snapshot.pods,
      labels: snapshot.labels,
      ...pre,
    });
    if (plan.kind === 'blocked') {
      for (const r of plan.reasons) out(`blocked: ${r}`);
      out(`namespace ${namespace} not moved`);
      return 1;
    }
    if (plan.unchanged.length > 0)
      out(`pods without a sidecar (follow the namespace label): ${plan.unchanged.join(', ')}`);
    if (plan.steps.length === 0) {
      out(`namespace ${namespace}: nothing to do (${ctx.direction === 'forward' ? 'ambient' : 'sidecars'} already)`);
      return 0;
    }
    const started = performance.now();
    for (const [i, step] of plan.steps.entries()) {
      const t0 = performance.now();
      process.stdout.write(`[${i + 1}/${plan.steps.length}] ${describeStep(namespace, step)} … `);
      midStep = true;
      await runLiveStep(ctx, toLive(step));
      midStep = false;
      process.stdout.write(`done (${Math.round(performance.now() - t0)} ms)\n`);
    }
    out(
      `namespace ${namespace}: ${ctx.direction === 'forward' ? 'moved to ambient' : 'back on sidecars'} in ${Math.round(performance.now() - started)} ms`,
    );
    return 0;
  } catch (err) {
    if (!(err instanceof FerryError)) throw err;
    if (midStep) process.stdout.write('failed\n');
    process.stderr.write(`ferry migrate ${command}: ${err.code}: ${err.message}\n`);
    return 1;
  }
}

function toLive(step: MigrationStep): LiveStep {
  switch (step.kind) {
    case 'label-ambient':
    case 'label-sidecar':
      return { kind: 'label', changes: labelChanges(step) };
    default:
      return step;
  }
}

/** Blockers of `migrate check` for the namespace, and the converted objects not present (or not Accepted). */
async function preconditions(
  ctx: MigrationContext,
  files: readonly string[],
  out: (line: string) => void,
): Promise<{ blockers: string[]; missingObjects: string[] }> {
  if (files.length === 0) {
    out('no Istio configuration given (-f): skipping the migrate check and the converted-objects check');
    return { blockers: [], missingObjects: [] };
  }
  const decoded = await readInputFiles(files);
  const inv = buildInventory(decoded.documents, ctx.namespace);
  const plan: MigrationPlan = planMigration({ ...inv, problems: [...decoded.problems, ...inv.problems] });
  const blockers = plan.findings
    .filter((f) => f.severity === 'blocker' && (f.namespace === ctx.namespace || f.namespace === ''))
    .map((f) => `${f.object}: ${f.message}`);
  const status = (await controllerRequest(ctx.stateDir, 'GET', '/status')) as MeshStatus;
  const missingObjects = plan.objects
    .filter((o) => o.namespace === ctx.namespace)
    .map((o) => ({ kind: String(o.manifest.kind), name: String((o.manifest.metadata as { name?: unknown })?.name) }))
    .filter((o) => !present(status, ctx.namespace, o.kind, o.name))
    .map((o) => `${o.kind}/${ctx.namespace}/${o.name}`);
  return { blockers, missingObjects };
}

function present(s: MeshStatus, ns: string, kind: string, name: string): boolean {
  switch (kind) {
    case 'Service':
      return s.services.some((x) => x.namespace === ns && x.name === name);
    case 'AuthorizationPolicy':
      return s.policies.some((x) => x.namespace === ns && x.name === name);
    case 'Gateway':
      return s.waypoints.some((x) => x.namespace === ns && x.name === name);
    case 'HTTPRoute':
      return s.routes.some((l) => l.startsWith(`HTTPRoute ${ns}/${name} `) && l.includes('Accepted=True'));
    default:
      return true; // Namespace labels and the like: not checked here
  }
}

function parse(argv: readonly string[], defaultCluster: string) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      cluster: { type: 'string', default: defaultCluster },
      filename: { type: 'string', short: 'f', multiple: true },
      'step-timeout-ms': { type: 'string' },
    },
  });
}
