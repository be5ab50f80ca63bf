// Weighted choice among a rule's backendRefs (reference gateway-api-anchor.md §1.5): proportional to
// weight, weight 0 never chosen; null when there is nothing to choose (no backends, or all weights 0: the
// caller answers 500 like Istio). pickBackend is pure; BackendSplitter feeds it an evenly spread sequence.
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

/** 1/φ, the step of the golden-ratio (Weyl) sequence: its points fill [0, 1) as evenly as any sequence can. */
const GOLDEN_STEP = (Math.sqrt(5) - 1) / 2;

/**
 * Weighted splits with low discrepancy: each backend list (one rule of one config) walks its own golden-ratio
 * sequence from a random start, so 500 requests at 70/30 give 350 ± 1 rather than a binomial ±20, and any
 * regular subsequence of requests (every second one, say) is split in the same proportions, which a
 * round robin cannot promise. A new config starts new sequences.
 */
export class BackendSplitter {
  readonly #positions = new WeakMap<readonly RouteBackend[], number>();
  readonly #start: () => number;

  constructor(start: () => number = Math.random) {
    this.#start = start;
  }

  pick(backends: readonly RouteBackend[]): RouteBackend | null {
    const position = this.#positions.get(backends) ?? clamp01(this.#start());
    const next = position + GOLDEN_STEP;
    this.#positions.set(backends, next >= 1 ? next - 1 : next);
    return pickBackend(backends, position);
  }
}

function clamp01(x: number): number {
  return Number.isFinite(x) && x >= 0 && x < 1 ? x : 0;
}
