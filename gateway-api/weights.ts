// Weighted choice among a rule's backendRefs (reference gateway-api-anchor.md §1.5): proportional to
// weight, weight 0 never chosen; null when there is nothing to choose (no backends, or all weights 0: the
// caller answers 500 like Istio). Randomness is passed in. Pure.
import type { RouteBackend } from './types.ts';

export function pickBackend(backends: readonly RouteBackend[], random01: number): RouteBackend | null {
  let total = 0;
  for (const b of backends) total += b.weight;
  if (total === 0) return null;
  let point = random01 * total;
  for (const b of backends) {
    if (b.weight === 0) continue;
    if (point < b.weight) return b;
    point -= b.weight;
  }
  // random01 is < 1, so only floating-point rounding lands here: the last backend with weight.
  return [...backends].reverse().find((b) => b.weight > 0) ?? null;
}
