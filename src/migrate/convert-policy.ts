// AuthorizationPolicy (sidecar mode) → its ambient form (docs/migration.md "Authorization policies"). A
// policy with only L4 content is enforced by ztunnel as written. A policy with L7 content (methods, paths,
// hosts, HTTP-level `when` keys) must move to the waypoint: `selector` becomes `targetRefs` naming the
// Services that front the selected workloads (no selector: the namespace's waypoint Gateway). Left as it
// is, ztunnel would drop every L7 ALLOW rule (the pod then refuses all traffic) and keep only the L4 part of
// L7 DENY rules. Policies using what Ferry's waypoint cannot evaluate are not converted: a blocker. Pure.
import { matchesLabels } from '../controller/sources/label-match.ts';
import type { AuthorizationPolicyObject, Labels } from '../controller/sources/types.ts';
import {
  type ConvertedObject,
  type Finding,
  type Inventory,
  isObj,
  labelsToObject,
  MIGRATED_BY_LABEL,
  MIGRATED_FROM_ANNOTATION,
  objectRefOf,
  WAYPOINT_NAME,
} from './types.ts';

const L4_WHEN_KEYS = new Set([
  'source.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
]);
const L7_SOURCE_KEYS = ['requestPrincipals', 'notRequestPrincipals', 'remoteIpBlocks', 'notRemoteIpBlocks'];
const L7_OPERATION_KEYS = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'];
/** What Ferry's waypoint evaluates (src/waypoint/authz/compile.ts); anything else would be rejected or ignored. */
const WAYPOINT_SOURCE_KEYS = new Set([
  'principals',
  'notPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
]);
const WAYPOINT_WHEN_KEYS = new Set(['source.ip', 'source.namespace', 'source.principal', 'destination.port']);
const HEADER_KEY = /^request\.headers\[[^\]]+\]$/;

export interface PolicyConversion {
  readonly object: ConvertedObject | null;
  readonly findings: readonly Finding[];
  /** True when the policy needs the namespace's waypoint. */
  readonly needsWaypoint: boolean;
}

/** Fields of a policy's rules that only an L7 proxy can evaluate (`spec.rules[0].to[0].operation.paths`, …). */
export function l7Fields(raw: unknown): string[] {
  const out: string[] = [];
  const rules = isObj(raw) && Array.isArray(raw.rules) ? raw.rules : [];
  rules.forEach((rule, i) => {
    if (!isObj(rule)) return;
    const at = `spec.rules[${i}]`;
    eachEntry(rule.from, 'source', (s, j) => {
      for (const k of L7_SOURCE_KEYS) if (s[k] !== undefined) out.push(`${at}.from[${j}].source.${k}`);
    });
    eachEntry(rule.to, 'operation', (o, j) => {
      for (const k of L7_OPERATION_KEYS) if (o[k] !== undefined) out.push(`${at}.to[${j}].operation.${k}`);
    });
    (Array.isArray(rule.when) ? rule.when : []).forEach((w, j) => {
      if (isObj(w) && typeof w.key === 'string' && !L4_WHEN_KEYS.has(w.key)) out.push(`${at}.when[${j}] (${w.key})`);
    });
  });
  return out;
}

/** Fields Ferry's waypoint cannot evaluate (JWT, service accounts, remote IPs, other `when` keys). */
function waypointUnsupported(raw: unknown): string[] {
  const out: string[] = [];
  const rules = isObj(raw) && Array.isArray(raw.rules) ? raw.rules : [];
  rules.forEach((rule, i) => {
    if (!isObj(rule)) return;
    const at = `spec.rules[${i}]`;
    eachEntry(rule.from, 'source', (s, j) => {
      for (const k of Object.keys(s)) if (!WAYPOINT_SOURCE_KEYS.has(k)) out.push(`${at}.from[${j}].source.${k}`);
    });
    (Array.isArray(rule.when) ? rule.when : []).forEach((w, j) => {
      const key = isObj(w) && typeof w.key === 'string' ? w.key : '';
      if (!WAYPOINT_WHEN_KEYS.has(key) && !HEADER_KEY.test(key)) out.push(`${at}.when[${j}] (${key})`);
    });
  });
  return out;
}

function eachEntry(list: unknown, body: string, fn: (o: Readonly<Record<string, unknown>>, j: number) => void): void {
  (Array.isArray(list) ? list : []).forEach((e, j) => {
    const o = isObj(e) ? e[body] : undefined;
    if (isObj(o)) fn(o, j);
  });
}

export function convertAuthorizationPolicy(ap: AuthorizationPolicyObject, inv: Inventory): PolicyConversion {
  const ns = ap.metadata.namespace;
  const ref = objectRefOf('AuthorizationPolicy', ns, ap.metadata.name);
  const findings: Finding[] = [];
  const find = (severity: Finding['severity'], category: Finding['category'], field: string, message: string) =>
    findings.push({ severity, category, namespace: ns, object: ref, field, message });
  const none = (needsWaypoint = false): PolicyConversion => ({ object: null, findings, needsWaypoint });
  if (ap.spec.hasTargetRefs) {
    find('info', 'l7-policy', 'spec.targetRefs', 'already bound with targetRefs: kept as written');
    return none();
  }
  const raw = isObj(ap.spec.raw) ? ap.spec.raw : {};
  const l7 = l7Fields(raw);
  if (ap.spec.action === 'CUSTOM') {
    find(
      'blocker',
      'l7-policy',
      'spec.action',
      'CUSTOM (external authorization) is not supported by Ferry waypoints: not converted',
    );
    return none();
  }
  if (l7.length === 0) {
    find('info', 'l4-policy', 'spec.rules', 'L4 only: enforced by ztunnel as written, no change needed');
    return none();
  }
  if (ap.spec.action === 'AUDIT') {
    find(
      'warning',
      'l7-policy',
      'spec.action',
      'AUDIT policies are not supported by Ferry waypoints: not converted (only logging is lost)',
    );
    return none();
  }
  const unsupported = waypointUnsupported(raw);
  if (unsupported.length > 0) {
    find(
      'blocker',
      'l7-policy',
      unsupported[0] as string,
      `L7 policy uses what Ferry's waypoint cannot evaluate (${unsupported.join(', ')}): not converted; ztunnel would enforce it ${ap.spec.action === 'ALLOW' ? 'by denying all traffic to the selected pods' : 'only in part'}`,
    );
    return none();
  }
  let targetRefs: Record<string, string>[];
  if (ap.spec.selector === null) {
    targetRefs = [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: WAYPOINT_NAME }];
    find(
      'info',
      'l7-policy',
      'spec',
      `L7 rules (${l7.join(', ')}) on the whole namespace: bound to the waypoint Gateway ${ns}/${WAYPOINT_NAME}`,
    );
  } else {
    const targets = servicesFor(ap.spec.selector, ns, inv);
    if (targets.services.length === 0) {
      find(
        'blocker',
        'l7-policy',
        'spec.selector',
        `L7 rules (${l7.join(', ')}) must move to a waypoint, but no Service in the input selects the workloads of selector ${formatLabels(ap.spec.selector)}: not converted (give the Service manifests, or bind the policy to a Service by hand)`,
      );
      return none();
    }
    targetRefs = targets.services.map((name) => ({ group: '', kind: 'Service', name }));
    find(
      'info',
      'l7-policy',
      'spec.selector',
      `L7 rules (${l7.join(', ')}): selector ${formatLabels(ap.spec.selector)} → targetRefs Service ${targets.services.join(', ')} (enforced by the waypoint)`,
    );
    for (const w of targets.warnings) find('warning', 'l7-policy', 'spec.selector', w);
    if (ap.spec.action === 'DENY') {
      // The waypoint (istio.io/waypoint-for: service) sees only traffic addressed to the Service.
      find(
        'warning',
        'l7-policy',
        'spec.action',
        'a DENY enforced at the waypoint applies to requests sent to the Service; requests sent to pod IPs directly bypass it (label the waypoint istio.io/waypoint-for: all if clients do that)',
      );
    }
  }
  const { selector: _selector, targetRef: _targetRef, ...rest } = raw;
  const manifest = {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: {
      name: ap.metadata.name,
      namespace: ns,
      labels: { [MIGRATED_BY_LABEL]: 'ferry-migrate' },
      annotations: { [MIGRATED_FROM_ANNOTATION]: ref },
    },
    spec: { targetRefs, ...rest },
  };
  return { object: { namespace: ns, manifest, from: [ref], notConverted: [] }, findings, needsWaypoint: true };
}

/**
 * The Services (same namespace) that front the workloads a selector picks: from the Deployments and Pods in
 * the input when there are any, else from the selectors themselves (a Service whose selector the policy's
 * selector includes). Warns when a Service also fronts workloads the selector did not pick.
 */
export function servicesFor(selector: Labels, ns: string, inv: Inventory): { services: string[]; warnings: string[] } {
  const workloads = [
    ...inv.deployments
      .filter((d) => d.metadata.namespace === ns)
      .map((d) => ({ name: `Deployment ${d.metadata.name}`, labels: d.spec.template.labels })),
    ...inv.pods
      .filter((p) => p.metadata.namespace === ns)
      .map((p) => ({ name: `Pod ${p.metadata.name}`, labels: p.metadata.labels })),
  ];
  const services: string[] = [];
  const warnings: string[] = [];
  for (const svc of inv.services) {
    if (svc.metadata.namespace !== ns || svc.spec.selector === null || svc.spec.selector.size === 0) continue;
    if (svc.metadata.labels.get(MIGRATED_BY_LABEL) !== undefined) continue;
    const sel = svc.spec.selector;
    if (workloads.length > 0) {
      const fronted = workloads.filter((w) => matchesLabels(sel, w.labels));
      const picked = fronted.filter((w) => matchesLabels(selector, w.labels));
      if (picked.length === 0) continue;
      services.push(svc.metadata.name);
      const others = fronted.filter((w) => !matchesLabels(selector, w.labels));
      if (others.length > 0) {
        warnings.push(
          `Service ${svc.metadata.name} also fronts ${others.map((w) => w.name).join(', ')}, which the selector did not pick: the policy now applies to them too`,
        );
      }
    } else if (matchesLabels(sel, selector)) {
      services.push(svc.metadata.name);
      if (sel.size < selector.size) {
        warnings.push(
          `no workloads in the input; Service ${svc.metadata.name} (selector ${formatLabels(sel)}) may front more pods than the policy's selector picked`,
        );
      }
    }
  }
  return { services, warnings };
}

export function formatLabels(labels: Labels): string {
  return `{${Object.entries(labelsToObject(labels))
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ')}}`;
}
