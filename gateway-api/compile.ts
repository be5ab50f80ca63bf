// A route as written (HTTPRoute here; GRPCRoute and TCPRoute bring their own rule compilers:
// compile-grpc.ts, compile-tcp.ts) → CompiledRoute + RouteStatus (docs/operations.md, "Gateway API
// support, by kind and field"; GEP-1294 for Service parents): parentRefs of kind Service (GAMMA producer routes, and consumer routes: a Service in
// another namespace, applied to that namespace's clients only) or the waypoint Gateway, each rule compiled on
// its own (an invalid rule is dropped, the others keep working: PartiallyInvalid "Dropped Rule"), backend
// references resolved (an unresolved one keeps its weight and answers 500). The controller (status) and the
// waypoint (routing) both run this, so they agree on what is in effect. Pure; never throws.

import type { RuleScope } from './compile-common.ts';
import { describeValue } from './compile-common.ts';
import { type CompileContext, compileRule, isObj, type RouteProblem, type RuleOutcome } from './compile-rule.ts';
import type {
  CompiledRoute,
  CompiledRule,
  ObjectInput,
  RouteCondition,
  RouteKind,
  RouteParent,
  RouteParentStatus,
  RouteStatus,
} from './types.ts';
import { FERRY_CONTROLLER_NAME } from './types.ts';

export type { CompileContext, RouteProblem, ServicePortInfo } from './compile-rule.ts';

export interface CompileResult {
  /** null when nothing of the route can be used (no valid rule, or no parent that accepted it). */
  readonly route: CompiledRoute | null;
  readonly status: RouteStatus;
  readonly problems: readonly RouteProblem[];
  /** For each `route.parents[i]`, the index of its entry in `status.parents` (route-conflicts.ts amends it). */
  readonly parentStatusIndex?: readonly number[];
}

const MAX_PARENTS = 32;
const MAX_RULES = 16;
const MAX_MATCHES_PER_ROUTE = 128;

interface ParentOutcome {
  readonly ref: Readonly<Record<string, string | number>>;
  readonly parent: RouteParent | null;
  /** null = not ours: no status entry. */
  readonly accepted:
    | { readonly ok: true }
    | { readonly ok: false; readonly reason: string; readonly message: string }
    | null;
}

/** One rule of a route kind as written → CompiledRule, or the problems that drop it. */
export type RuleCompiler = (raw: unknown, index: number, scope: RuleScope) => RuleOutcome;

export function compileHttpRoute(input: ObjectInput, ctx: CompileContext): CompileResult {
  return compileRouteOf('HTTPRoute', input, ctx, compileRule);
}

/** The route-level part every kind shares: parents, rule limits, names, status. */
export function compileRouteOf(
  kind: RouteKind,
  input: ObjectInput,
  ctx: CompileContext,
  compileOne: RuleCompiler,
): CompileResult {
  const key = `${input.namespace}/${input.name}`;
  const problems: RouteProblem[] = [];
  const spec = input.spec;
  if (!isObj(spec)) {
    problems.push({
      code: 'FERRY_ROUTE_INVALID',
      field: 'spec',
      reason: 'UnsupportedValue',
      message: 'must be an object',
    });
    return { route: null, status: { kind, key, parents: [] }, problems };
  }
  const parents = readParents(spec.parentRefs, input.namespace, ctx, problems);
  const needsReferenceGrant = parents.some((p) => p.parent?.kind === 'Gateway');
  const scope: RuleScope = { namespace: input.namespace, routeKey: key, needsReferenceGrant, ctx, routeKind: kind };

  const rulesRaw = spec.rules ?? [{}];
  const rules: CompiledRule[] = [];
  const dropped: string[] = [];
  const droppedReasons = new Set<string>();
  const unresolved: RouteProblem[] = [];
  let routeInvalid: string | null = null;
  if (!Array.isArray(rulesRaw) || rulesRaw.length === 0 || rulesRaw.length > MAX_RULES) {
    routeInvalid = `spec.rules must be a list of 1 to ${MAX_RULES} rules`;
    problems.push({
      code: 'FERRY_ROUTE_INVALID',
      field: 'spec.rules',
      reason: 'UnsupportedValue',
      message: routeInvalid,
    });
  } else {
    const totalMatches = rulesRaw.reduce(
      (n: number, r: unknown) => n + (isObj(r) && Array.isArray(r.matches) ? r.matches.length : 1),
      0,
    );
    if (totalMatches > MAX_MATCHES_PER_ROUTE) {
      routeInvalid = `at most ${MAX_MATCHES_PER_ROUTE} matches per route (found ${totalMatches})`;
      problems.push({
        code: 'FERRY_ROUTE_INVALID',
        field: 'spec.rules',
        reason: 'UnsupportedValue',
        message: routeInvalid,
      });
    } else {
      const names = new Set<string>();
      rulesRaw.forEach((raw: unknown, i: number) => {
        const out = compileOne(raw, i, scope);
        unresolved.push(...out.unresolved);
        if (out.rule !== null && out.rule.name !== null && names.has(out.rule.name)) {
          const message = `rule name ${JSON.stringify(out.rule.name)} is used twice`;
          problems.push({
            code: 'FERRY_ROUTE_INVALID',
            field: `spec.rules[${i}].name`,
            reason: 'UnsupportedValue',
            message,
          });
          dropped.push(`spec.rules[${i}]: ${message}`);
          return;
        }
        if (out.rule === null) {
          problems.push(...out.invalid);
          for (const p of out.invalid) droppedReasons.add(p.reason);
          dropped.push(`spec.rules[${i}]: ${out.invalid.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
          return;
        }
        if (out.rule.name !== null) names.add(out.rule.name);
        rules.push(out.rule);
      });
    }
  }
  problems.push(...unresolved);
  const hostnames = spec.hostnames;
  if (hostnames !== undefined && (!Array.isArray(hostnames) || hostnames.length > 16)) {
    problems.push({
      code: 'FERRY_ROUTE_INVALID',
      field: 'spec.hostnames',
      reason: 'UnsupportedValue',
      message: 'must be a list of at most 16 hostnames',
    });
  }

  const allDropped = routeInvalid !== null || rules.length === 0;
  const status = buildStatus(kind, key, parents, { allDropped, dropped, droppedReasons, unresolved, routeInvalid });
  const attached: RouteParent[] = [];
  const parentStatusIndex: number[] = [];
  let statusIndex = 0;
  for (const p of parents) {
    if (p.accepted === null) continue;
    if (p.parent !== null && p.accepted.ok) {
      attached.push(p.parent);
      parentStatusIndex.push(statusIndex);
    }
    statusIndex += 1;
  }
  const route: CompiledRoute | null =
    allDropped || attached.length === 0
      ? null
      : {
          kind,
          key,
          namespace: input.namespace,
          name: input.name,
          creationTimestampMs: input.creationTimestampMs,
          sequence: input.sequence,
          parents: attached,
          rules,
        };
  return { route, status, problems, parentStatusIndex };
}

function readParents(v: unknown, namespace: string, ctx: CompileContext, problems: RouteProblem[]): ParentOutcome[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.length > MAX_PARENTS) {
    problems.push({
      code: 'FERRY_ROUTE_INVALID',
      field: 'spec.parentRefs',
      reason: 'UnsupportedValue',
      message: `must be a list of at most ${MAX_PARENTS} parentRefs`,
    });
    return [];
  }
  return v.map((raw: unknown, i: number) => readParent(raw, `spec.parentRefs[${i}]`, namespace, ctx, problems));
}

function readParent(
  raw: unknown,
  at: string,
  routeNs: string,
  ctx: CompileContext,
  problems: RouteProblem[],
): ParentOutcome {
  const ref: Record<string, string | number> = {};
  if (!isObj(raw) || typeof raw.name !== 'string' || raw.name === '') {
    problems.push({
      code: 'FERRY_ROUTE_INVALID',
      field: `${at}.name`,
      reason: 'UnsupportedValue',
      message: 'must be a non-empty string',
    });
    return { ref, parent: null, accepted: null };
  }
  for (const k of ['group', 'kind', 'namespace', 'name', 'sectionName', 'port'] as const) {
    const value = raw[k];
    if (typeof value === 'string' || typeof value === 'number') ref[k] = value;
  }
  const group = raw.group ?? 'gateway.networking.k8s.io';
  const kind = raw.kind ?? 'Gateway';
  const namespace = typeof raw.namespace === 'string' && raw.namespace !== '' ? raw.namespace : routeNs;
  const name = raw.name;
  const refuse = (reason: string, message: string): ParentOutcome => {
    problems.push({ code: 'FERRY_ROUTE_NO_PARENT', field: at, reason, message });
    return { ref, parent: null, accepted: { ok: false, reason, message } };
  };
  if ((group === '' || group === 'core') && kind === 'Service') {
    // A Service in another namespace makes this a consumer route (GEP-1294): it applies only to requests
    // from this route's namespace, ahead of the Service's producer routes (route-table.ts).
    const svc = ctx.service(namespace, name);
    if (svc === undefined) return refuse('NoMatchingParent', `parent service "${namespace}/${name}" not found`);
    let port: number | null = null;
    if (raw.port !== undefined) {
      if (!Number.isInteger(raw.port) || !svc.ports.some((p) => p.port === raw.port)) {
        return refuse(
          'NoMatchingParent',
          `parent service "${namespace}/${name}" has no port ${describeValue(raw.port)}`,
        );
      }
      port = raw.port as number;
    }
    if (raw.sectionName !== undefined) {
      const named = svc.ports.find((p) => p.name !== null && p.name === raw.sectionName);
      if (named === undefined || (port !== null && named.port !== port)) {
        return refuse(
          'NoMatchingParent',
          `parent service "${namespace}/${name}" has no port named ${describeValue(raw.sectionName)}${port === null ? '' : ` with number ${port}`}`,
        );
      }
      port = named.port;
    }
    return { ref, parent: { kind: 'Service', namespace, name, port }, accepted: { ok: true } };
  }
  if (group === 'gateway.networking.k8s.io' && kind === 'Gateway') {
    if (!ctx.isWaypointGateway(namespace, name)) return { ref, parent: null, accepted: null }; // someone else's
    return { ref, parent: { kind: 'Gateway', namespace, name }, accepted: { ok: true } };
  }
  return { ref, parent: null, accepted: null };
}

interface RuleSummary {
  readonly allDropped: boolean;
  readonly dropped: readonly string[];
  readonly droppedReasons: ReadonlySet<string>;
  readonly unresolved: readonly RouteProblem[];
  readonly routeInvalid: string | null;
}

function buildStatus(kind: RouteKind, key: string, parents: readonly ParentOutcome[], s: RuleSummary): RouteStatus {
  const out: RouteParentStatus[] = [];
  for (const p of parents) {
    if (p.accepted === null) continue;
    const conditions: RouteCondition[] = [];
    if (!p.accepted.ok) {
      conditions.push({ type: 'Accepted', status: 'False', reason: p.accepted.reason, message: p.accepted.message });
    } else if (s.allDropped) {
      const message = s.routeInvalid ?? `no valid rule: ${s.dropped.join('; ')}`;
      const reason = s.droppedReasons.has('IncompatibleFilters') ? 'IncompatibleFilters' : 'UnsupportedValue';
      conditions.push({ type: 'Accepted', status: 'False', reason, message });
    } else {
      const routeNs = key.slice(0, key.indexOf('/'));
      const consumer = p.parent?.kind === 'Service' && p.parent.namespace !== routeNs;
      const message = consumer
        ? `Route was valid (consumer route: applies to requests from namespace ${routeNs} only)`
        : 'Route was valid';
      conditions.push({ type: 'Accepted', status: 'True', reason: 'Accepted', message });
    }
    const first = s.unresolved[0];
    conditions.push(
      first === undefined
        ? { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'All references resolved' }
        : {
            type: 'ResolvedRefs',
            status: 'False',
            reason: first.reason,
            message: s.unresolved.map((u) => u.message).join('; '),
          },
    );
    if (p.accepted.ok && !s.allDropped && s.dropped.length > 0) {
      conditions.push({
        type: 'PartiallyInvalid',
        status: 'True',
        reason: 'UnsupportedValue',
        message: `Dropped Rule(s): ${s.dropped.join('; ')}`,
      });
    }
    out.push({ parentRef: p.ref, controllerName: FERRY_CONTROLLER_NAME, conditions });
  }
  return { kind, key, parents: out };
}
