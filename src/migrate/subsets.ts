// DestinationRule subsets → per-subset Services (docs/migration.md "Subsets"): an HTTPRoute can only send to
// Services, so the subset `v2` of Service `reviews` becomes the Service `reviews-v2`, selecting the Service's
// pods that also carry the subset's labels, with the same ports. A Service of that name that already exists
// is reused when it selects exactly those pods, else the subset is not converted (never overwritten). Also
// reports what of a DestinationRule has no HTTPRoute/Service equivalent (traffic policies). Pure.
import { describeValue } from '../../gateway-api/compile-common.ts';
import type { ServiceObject } from '../controller/sources/types.ts';
import { resolveServiceHost } from './istio-values.ts';
import {
  type ConvertedObject,
  type Finding,
  type Inventory,
  type IstioObject,
  isObj,
  labelsToObject,
  MIGRATED_BY_LABEL,
  MIGRATED_FROM_ANNOTATION,
  objectRefOf,
} from './types.ts';

export type SubsetResult =
  | { readonly ok: true; readonly service: string }
  | { readonly ok: false; readonly reason: string };

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export class SubsetServices {
  readonly #made = new Map<string, { result: SubsetResult; object: ConvertedObject | null }>();
  /** `ns/name` of a Service → the DestinationRules whose host is that Service. */
  readonly #rulesByService = new Map<string, IstioObject[]>();
  readonly #services = new Map<string, ServiceObject>();

  constructor(inv: Inventory) {
    for (const dr of inv.destinationRules) {
      const ref = typeof dr.spec.host === 'string' ? resolveServiceHost(dr.spec.host, dr.namespace) : null;
      if (ref === null) continue;
      const key = `${ref.namespace}/${ref.name}`;
      this.#rulesByService.set(key, [...(this.#rulesByService.get(key) ?? []), dr]);
    }
    for (const s of inv.services) this.#services.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
  }

  /** The DestinationRule for a Service, as Istio picks it: the one in `fromNs`, else the Service's namespace. */
  destinationRuleFor(svc: ServiceObject, fromNs: string): IstioObject | null {
    const matching = this.#rulesByService.get(`${svc.metadata.namespace}/${svc.metadata.name}`) ?? [];
    return (
      matching.find((dr) => dr.namespace === fromNs) ??
      matching.find((dr) => dr.namespace === svc.metadata.namespace) ??
      null
    );
  }

  /** The Service that stands for `svc`'s subset, generated on first use. */
  resolve(svc: ServiceObject, subset: string, fromNs: string): SubsetResult {
    const key = `${svc.metadata.namespace}/${svc.metadata.name}/${subset}`;
    const hit = this.#made.get(key);
    if (hit !== undefined) return hit.result;
    const made = this.#make(svc, subset, fromNs);
    this.#made.set(key, made);
    return made.result;
  }

  /** Every generated Service, in the order first used. */
  generated(): ConvertedObject[] {
    return [...this.#made.values()].flatMap((m) => (m.object === null ? [] : [m.object]));
  }

  #make(svc: ServiceObject, subset: string, fromNs: string): { result: SubsetResult; object: ConvertedObject | null } {
    const fail = (reason: string) => ({ result: { ok: false, reason } as const, object: null });
    const svcRef = `${svc.metadata.namespace}/${svc.metadata.name}`;
    const dr = this.destinationRuleFor(svc, fromNs);
    if (dr === null) return fail(`subset ${subset}: no DestinationRule defines subsets of Service ${svcRef}`);
    const subsets = Array.isArray(dr.spec.subsets) ? dr.spec.subsets : [];
    const def = subsets.find((s) => isObj(s) && s.name === subset);
    if (!isObj(def)) return fail(`subset ${subset}: not defined in DestinationRule ${dr.namespace}/${dr.name}`);
    if (svc.spec.selector === null || svc.spec.selector.size === 0) {
      return fail(
        `subset ${subset}: Service ${svcRef} has no selector, so a per-subset Service cannot select its pods`,
      );
    }
    const selector = new Map(svc.spec.selector);
    const labels = isObj(def.labels) ? def.labels : {};
    for (const [k, v] of Object.entries(labels)) {
      if (typeof v !== 'string') return fail(`subset ${subset}: label ${k} is not a string`);
      if (selector.has(k) && selector.get(k) !== v) {
        return fail(
          `subset ${subset}: label ${k}=${v} contradicts the Service selector (${k}=${selector.get(k)}): it selects no pod`,
        );
      }
      selector.set(k, v);
    }
    const name = `${svc.metadata.name}-${subset.toLowerCase()}`;
    if (!LABEL.test(name) || name.length > 63) {
      return fail(
        `subset ${subset}: ${JSON.stringify(name)} is not a valid Service name (DNS-1035 label, ≤ 63 characters)`,
      );
    }
    const existing = this.#services.get(`${svc.metadata.namespace}/${name}`);
    if (existing !== undefined) {
      const same =
        existing.spec.selector !== null &&
        existing.spec.selector.size === selector.size &&
        [...selector].every(([k, v]) => existing.spec.selector?.get(k) === v);
      return same
        ? { result: { ok: true, service: name }, object: null }
        : fail(`subset ${subset}: a Service ${svc.metadata.namespace}/${name} already exists with another selector`);
    }
    const drRef = objectRefOf('DestinationRule', dr.namespace, dr.name);
    const ports = svc.spec.ports.map((p) => ({
      ...(p.name === null ? {} : { name: p.name }),
      port: p.port,
      targetPort: p.targetPort,
      protocol: p.protocol,
      ...(p.appProtocol === undefined || p.appProtocol === null ? {} : { appProtocol: p.appProtocol }),
    }));
    const manifest = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name,
        namespace: svc.metadata.namespace,
        labels: { [MIGRATED_BY_LABEL]: 'ferry-migrate' },
        annotations: { [MIGRATED_FROM_ANNOTATION]: `${drRef} subset ${subset}` },
      },
      spec: { selector: labelsToObject(selector), ports },
    };
    const notConverted = isObj(def.trafficPolicy)
      ? [
          `${drRef} spec.subsets[${subsets.indexOf(def)}].trafficPolicy: per-subset traffic policies have no Service equivalent`,
        ]
      : [];
    return {
      result: { ok: true, service: name },
      object: {
        namespace: svc.metadata.namespace,
        manifest,
        from: [drRef, objectRefOf('Service', svc.metadata.namespace, svc.metadata.name)],
        notConverted,
      },
    };
  }
}

/** What of a DestinationRule is not carried by the conversion (traffic policies, exportTo, workloadSelector). */
export function destinationRuleFindings(dr: IstioObject): Finding[] {
  const out: Finding[] = [];
  const ref = objectRefOf('DestinationRule', dr.namespace, dr.name);
  const add = (severity: Finding['severity'], category: Finding['category'], field: string, message: string) =>
    out.push({ severity, category, namespace: dr.namespace, object: ref, field, message });
  const tp = dr.spec.trafficPolicy;
  if (isObj(tp)) {
    for (const key of Object.keys(tp)) {
      add('warning', 'traffic-policy', `spec.trafficPolicy.${key}`, trafficPolicyMessage(key));
    }
  }
  const subsets = Array.isArray(dr.spec.subsets) ? dr.spec.subsets : [];
  subsets.forEach((s, i) => {
    if (isObj(s) && isObj(s.trafficPolicy)) {
      add(
        'warning',
        'traffic-policy',
        `spec.subsets[${i}].trafficPolicy`,
        'per-subset traffic policy is not converted (no per-Service equivalent in Ferry)',
      );
    }
  });
  if (subsets.length > 0) {
    add(
      'info',
      'subset',
      'spec.subsets',
      `subsets ${subsets.map((s) => (isObj(s) ? describeValue(s.name) : '?')).join(', ')} become per-subset Services when a route uses them`,
    );
  }
  if (Array.isArray(dr.spec.exportTo)) {
    add(
      'warning',
      'export-to',
      'spec.exportTo',
      'exportTo has no ambient equivalent: the generated Services are visible mesh-wide',
    );
  }
  if (dr.spec.workloadSelector !== undefined) {
    add(
      'warning',
      'traffic-policy',
      'spec.workloadSelector',
      'workloadSelector (per-client DestinationRule) has no ambient equivalent',
    );
  }
  return out;
}

function trafficPolicyMessage(key: string): string {
  switch (key) {
    case 'tls':
      return 'client TLS settings are not converted: in ambient, ztunnel carries mesh traffic over HBONE mTLS';
    case 'loadBalancer':
      return 'load-balancer settings are not converted (Ferry picks endpoints weighted-random among healthy ones)';
    case 'connectionPool':
      return 'connection-pool limits are not converted (no HTTPRoute equivalent)';
    case 'outlierDetection':
      return 'outlier detection is not converted (no HTTPRoute equivalent)';
    default:
      return `trafficPolicy.${key} is not converted (no HTTPRoute equivalent)`;
  }
}
