// A pod's QoS class, computed as Kubernetes does (pkg/apis/core/v1/helper/qos): Guaranteed when every
// container (init containers included) sets cpu and memory limits and its requests, where given, equal
// them; BestEffort when no container requests or limits cpu or memory; Burstable otherwise. A missing
// request defaults to the limit. Pure: reads the pod's JSON spec.
import { isJson, type Json } from '../../kube/client.ts';

export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

const COMPUTE = ['cpu', 'memory'] as const;

export function podQosClass(spec: Json): QosClass {
  const containers = [...listOf(spec.initContainers), ...listOf(spec.containers)];
  let anySet = false;
  let guaranteed = containers.length > 0;
  for (const c of containers) {
    const resources = isJson(c.resources) ? c.resources : {};
    const requests = isJson(resources.requests) ? resources.requests : {};
    const limits = isJson(resources.limits) ? resources.limits : {};
    for (const r of COMPUTE) {
      const limit = quantityText(limits[r]);
      const request = quantityText(requests[r]) ?? limit;
      if (limit !== undefined || request !== undefined) anySet = true;
      if (limit === undefined || request === undefined || !sameQuantity(request, limit)) guaranteed = false;
    }
  }
  if (!anySet) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

function listOf(v: unknown): Json[] {
  return Array.isArray(v) ? v.filter(isJson) : [];
}

function quantityText(v: unknown): string | undefined {
  if (typeof v === 'number') return String(v);
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

const SUFFIX: Readonly<Record<string, number>> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** `500m` and `0.5` are the same quantity; an unparsable one equals only its identical text. */
function sameQuantity(a: string, b: string): boolean {
  if (a === b) return true;
  const x = parseQuantity(a);
  const y = parseQuantity(b);
  return x !== null && y !== null && Math.abs(x - y) <= Math.abs(x) * 1e-12;
}

export function parseQuantity(text: string): number | null {
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(text);
  if (m === null) return null;
  const n = Number(m[1]);
  const scale = SUFFIX[m[2] ?? ''];
  return Number.isFinite(n) && scale !== undefined ? n * scale : null;
}
