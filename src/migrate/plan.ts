// The migration plan (docs/migration.md): the inventory → the ambient objects (`convert`) and every finding
// (`check` prints the findings only, so both commands always agree). Per namespace that needs L7 (a converted
// HTTPRoute or L7 policy), a waypoint Gateway (class ferry-waypoint, listener mesh/15008/HBONE) and the
// `istio.io/use-waypoint` namespace label. Output order per namespace: Namespace, Gateway, Services,
// HTTPRoutes, AuthorizationPolicies, so `kubectl apply -f` creates what a route refers to first. Pure.
import { otherFindings } from './check.ts';
import { convertAuthorizationPolicy } from './convert-policy.ts';
import { convertVirtualService } from './convert-route.ts';
import { destinationRuleFindings, SubsetServices } from './subsets.ts';
import {
  type ConvertedObject,
  compareFindings,
  type Finding,
  type Inventory,
  labelsToObject,
  MIGRATED_BY_LABEL,
  type MigrationPlan,
  objectRefOf,
  WAYPOINT_NAME,
} from './types.ts';
import { verifyRoutes } from './verify.ts';

export const WAYPOINT_GATEWAY_CLASS = 'ferry-waypoint';
export const USE_WAYPOINT_LABEL = 'istio.io/use-waypoint';
const KIND_ORDER = ['Namespace', 'Gateway', 'Service', 'HTTPRoute', 'AuthorizationPolicy'];

export function planMigration(inv: Inventory): MigrationPlan {
  const findings: Finding[] = [];
  for (const p of inv.problems) {
    findings.push({
      severity: 'blocker',
      category: 'input',
      namespace: '',
      object: p.object,
      field: '',
      message: `${p.file}${p.line === null ? '' : `:${p.line}`}: ${p.message} (not read: fix the input)`,
    });
  }
  const services = new Map(inv.services.map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s]));
  const subsets = new SubsetServices(inv);
  const ctx = { service: (ns: string, name: string) => services.get(`${ns}/${name}`), subsets };
  const converted: ConvertedObject[] = [];
  const needWaypoint = new Set<string>();
  const routeOfService = new Map<string, string>();
  for (const vs of inv.virtualServices) {
    const r = convertVirtualService(vs, ctx);
    findings.push(...r.findings);
    converted.push(...r.objects);
    for (const o of r.objects) {
      needWaypoint.add(o.namespace);
      findings.push(...sharedHosts(o, routeOfService));
    }
  }
  for (const dr of inv.destinationRules) findings.push(...destinationRuleFindings(dr));
  for (const ap of inv.authorizationPolicies) {
    const r = convertAuthorizationPolicy(ap, inv);
    findings.push(...r.findings);
    if (r.object !== null) converted.push(r.object);
    if (r.needsWaypoint) needWaypoint.add(ap.metadata.namespace);
  }
  findings.push(...otherFindings(inv));
  const waypointObjects: ConvertedObject[] = [];
  for (const ns of [...needWaypoint].sort()) {
    waypointObjects.push(namespaceWithLabel(inv, ns), waypointGateway(ns));
    findings.push({
      severity: 'info',
      category: 'waypoint',
      namespace: ns,
      object: objectRefOf('Namespace', '', ns),
      field: `metadata.labels["${USE_WAYPOINT_LABEL}"]`,
      message: `L7 routing/policy needs a waypoint: Gateway ${ns}/${WAYPOINT_NAME} (class ${WAYPOINT_GATEWAY_CLASS}) and the namespace label ${USE_WAYPOINT_LABEL}=${WAYPOINT_NAME}`,
    });
  }
  const objects = [...waypointObjects, ...subsets.generated(), ...converted].sort(
    (a, b) =>
      (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0) ||
      KIND_ORDER.indexOf(String(a.manifest.kind)) - KIND_ORDER.indexOf(String(b.manifest.kind)),
  );
  findings.push(...verifyRoutes(inv, objects));
  return { objects, findings: findings.sort(compareFindings) };
}

/**
 * Istio gives each host one VirtualService for sidecars; HTTPRoutes on the same Service all apply, their
 * rules merged by precedence. A second route on a Service is a warning naming the first.
 */
function sharedHosts(o: ConvertedObject, routeOfService: Map<string, string>): Finding[] {
  const out: Finding[] = [];
  const spec = o.manifest.spec as { parentRefs?: { name: string }[] };
  for (const p of spec.parentRefs ?? []) {
    const key = `${o.namespace}/${p.name}`;
    const first = routeOfService.get(key);
    const self = o.from[0] ?? '';
    if (first === undefined) routeOfService.set(key, self);
    else if (first !== self) {
      out.push({
        severity: 'warning',
        category: 'route',
        namespace: o.namespace,
        object: self,
        field: 'spec.hosts',
        message: `Service ${p.name} is also a host of ${first}: sidecars used one VirtualService per host, while both HTTPRoutes apply (rules merged by Gateway API precedence); merge them by hand`,
      });
    }
  }
  return out;
}

function namespaceWithLabel(inv: Inventory, ns: string): ConvertedObject {
  const existing = inv.namespaces.find((n) => n.metadata.name === ns);
  const labels = new Map(existing?.metadata.labels ?? []);
  labels.set(USE_WAYPOINT_LABEL, WAYPOINT_NAME);
  return {
    namespace: ns,
    manifest: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: labelsToObject(labels) } },
    from: existing === undefined ? [] : [objectRefOf('Namespace', '', ns)],
    notConverted: [],
  };
}

function waypointGateway(ns: string): ConvertedObject {
  return {
    namespace: ns,
    manifest: {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: {
        name: WAYPOINT_NAME,
        namespace: ns,
        labels: { 'istio.io/waypoint-for': 'service', [MIGRATED_BY_LABEL]: 'ferry-migrate' },
      },
      spec: {
        gatewayClassName: WAYPOINT_GATEWAY_CLASS,
        listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
      },
    },
    from: [],
    notConverted: [],
  };
}

/** Number of blockers: `check` and `convert` exit 1 when it is not 0. */
export function countBySeverity(plan: MigrationPlan): { blocker: number; warning: number; info: number } {
  const n = { blocker: 0, warning: 0, info: 0 };
  for (const f of plan.findings) n[f.severity]++;
  return n;
}
