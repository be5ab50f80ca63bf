// Loads test/fixtures/migrate/ files into a migration plan the way `ferry migrate -f` does (decode → inventory
// → plan), and helpers to look at the result: objects by kind/name, findings by severity, and the converted
// HTTPRoutes compiled by Ferry's own gateway-api compiler into route tables a request can be matched against.
import { readFileSync } from 'node:fs';
import { compileHttpRoute } from '../../gateway-api/compile.ts';
import { selectRoute } from '../../gateway-api/match.ts';
import { buildRouteTables } from '../../gateway-api/route-table.ts';
import type { CompiledRoute, RouteSelection } from '../../gateway-api/types.ts';
import { buildInventory } from '../../src/migrate/inventory.ts';
import { planMigration } from '../../src/migrate/plan.ts';
import { decodeManifest } from '../../src/migrate/read-files.ts';
import type { ConvertedObject, Finding, Inventory, MigrationPlan } from '../../src/migrate/types.ts';
import { compileContextFor } from '../../src/migrate/verify.ts';

export const FIXTURES = new URL('../fixtures/migrate/', import.meta.url).pathname;

export function inventoryFrom(...files: string[]): Inventory {
  return inventoryWith(files, '');
}

/** Fixture files plus inline YAML (a variant a test adds). */
export function inventoryWith(files: readonly string[], extraYaml: string): Inventory {
  const docs = [];
  const problems = [];
  const texts = files.map((f) => [f, readFileSync(`${FIXTURES}${f}`, 'utf8')] as const);
  for (const [f, text] of [...texts, ['inline.yaml', extraYaml] as const]) {
    const d = decodeManifest(text, f);
    docs.push(...d.documents);
    problems.push(...d.problems);
  }
  const inv = buildInventory(docs);
  return { ...inv, problems: [...problems, ...inv.problems] };
}

export function planFrom(...files: string[]): { inv: Inventory; plan: MigrationPlan } {
  const inv = inventoryFrom(...files);
  return { inv, plan: planMigration(inv) };
}

export function planWith(files: readonly string[], extraYaml: string): { inv: Inventory; plan: MigrationPlan } {
  const inv = inventoryWith(files, extraYaml);
  return { inv, plan: planMigration(inv) };
}

export function objectOf(plan: MigrationPlan, kind: string, name: string): ConvertedObject {
  const o = plan.objects.find(
    (x) => x.manifest.kind === kind && (x.manifest.metadata as { name: string }).name === name,
  );
  if (o === undefined) throw new Error(`no ${kind} ${name} in the plan`);
  return o;
}

export function kindsAndNames(plan: MigrationPlan): string[] {
  return plan.objects.map(
    (o) => `${String(o.manifest.kind)}/${o.namespace}/${(o.manifest.metadata as { name: string }).name}`,
  );
}

export function findingsOf(plan: MigrationPlan, severity: Finding['severity']): Finding[] {
  return plan.findings.filter((f) => f.severity === severity);
}

/** Every converted HTTPRoute compiled by gateway-api/compile.ts; throws when one is not accepted whole. */
export function compiledRoutes(inv: Inventory, plan: MigrationPlan): CompiledRoute[] {
  const ctx = compileContextFor(inv, plan.objects);
  return plan.objects
    .filter((o) => o.manifest.kind === 'HTTPRoute')
    .map((o, sequence) => {
      const name = (o.manifest.metadata as { name: string }).name;
      const r = compileHttpRoute(
        { namespace: o.namespace, name, creationTimestampMs: null, sequence, spec: o.manifest.spec },
        ctx,
      );
      if (r.route === null || r.problems.length > 0) {
        throw new Error(`HTTPRoute ${o.namespace}/${name} not accepted: ${JSON.stringify(r.problems)}`);
      }
      const accepted = r.status.parents.every((p) =>
        p.conditions.some((c) => c.type === 'Accepted' && c.status === 'True'),
      );
      if (!accepted) throw new Error(`HTTPRoute ${o.namespace}/${name}: ${JSON.stringify(r.status)}`);
      return r.route;
    });
}

/** The rule a request to `ns/service:port` selects at the waypoint, through Ferry's own route tables. */
export function routeRequest(
  routes: readonly CompiledRoute[],
  target: { ns: string; service: string; port: number },
  req: { method?: string; path: string; query?: string; headers?: Record<string, string> },
): RouteSelection | null {
  const tables = buildRouteTables(routes, { namespace: target.ns, name: 'waypoint' });
  const table = tables.forServicePort(target.ns, target.service, target.port);
  if (table === null) return null;
  const headers = new Map(Object.entries(req.headers ?? {}).map(([k, v]) => [k.toLowerCase(), [v]]));
  return selectRoute(table, { method: req.method ?? 'GET', path: req.path, query: req.query ?? '', headers });
}

/** Backend service names of a selection, with weights (`reviews-v2:1`). */
export function backendsOf(sel: RouteSelection | null): string[] {
  if (sel === null) return [];
  return sel.rule.backends.map((b) => `${b.service?.name ?? '?'}:${b.weight}`);
}
