// Kubernetes label-selector semantics, shared by source validation (Deployment selector vs template) and
// translation (Service, AuthorizationPolicy, PeerAuthentication selectors). Pure.
import type { LabelSelector, Labels } from './types.ts';

/** Equality-map selector (Service.spec.selector, Istio matchLabels): every pair present in `labels`. */
export function matchesLabels(selector: Labels, labels: Labels): boolean {
  for (const [key, value] of selector) if (labels.get(key) !== value) return false;
  return true;
}

/** metav1.LabelSelector: matchLabels AND each requirement. An empty selector matches everything. */
export function matchesLabelSelector(selector: LabelSelector, labels: Labels): boolean {
  if (!matchesLabels(selector.matchLabels, labels)) return false;
  return selector.matchExpressions.every((r) => {
    const value = labels.get(r.key);
    if (r.operator === 'In') return value !== undefined && r.values.includes(value);
    if (r.operator === 'NotIn') return value === undefined || !r.values.includes(value);
    return r.operator === 'Exists' ? value !== undefined : value === undefined;
  });
}
