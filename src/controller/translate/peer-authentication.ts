// PeerAuthentication → which mTLS policy a workload references (docs/architecture.md "Policy and enrollment"). The
// effective mode is the workload-selector PA's, else the namespace PA's, else the mesh-wide PA's (root
// namespace, no selector), UNSET inheriting from the next level and PERMISSIVE at the bottom; when several
// PAs compete at one level the oldest wins. STRICT → the static `<rootNs>/istio_converted_static_strict`
// DENY; PERMISSIVE → nothing; DISABLE is not supported in ambient and acts as PERMISSIVE (diagnostic).
// Port-level mTLS → one converted DENY policy per PA (authz/strict.ts). Pure.
import { type MtlsMode, portLevelMtlsPolicy, staticStrictPolicy } from '../../mesh/authz/strict.ts';
import { type Authorization, type PolicyKey, policyKey } from '../../mesh/types.ts';
import { matchesLabels } from '../sources/label-match.ts';
import type { Labels, MtlsModeSpec, PeerAuthenticationObject } from '../sources/types.ts';
import type { Diagnostics, TranslateSettings } from './types.ts';

/** Oldest first: creationTimestamp when both have one, then arrival order, then name (Istio's tie-break). */
export function olderFirst(a: PeerAuthenticationObject, b: PeerAuthenticationObject): number {
  const ta = a.metadata.creationTimestampMs;
  const tb = b.metadata.creationTimestampMs;
  if (ta !== null && tb !== null && ta !== tb) return ta - tb;
  if (a.metadata.sequence !== b.metadata.sequence) return a.metadata.sequence - b.metadata.sequence;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

export interface MtlsPolicies {
  /** Policy keys the workload references for mTLS (0 or 1). */
  readonly keys: readonly PolicyKey[];
}

export class PeerAuthenticationIndex {
  readonly #settings: TranslateSettings;
  readonly #mesh: PeerAuthenticationObject | null;
  readonly #byNamespace = new Map<string, PeerAuthenticationObject>();
  readonly #selectors: PeerAuthenticationObject[];
  /** Policies referenced so far, emitted once each. */
  readonly #emitted = new Map<PolicyKey, Authorization>();

  constructor(pas: readonly PeerAuthenticationObject[], settings: TranslateSettings, diags: Diagnostics) {
    this.#settings = settings;
    const sorted = [...pas].sort(olderFirst);
    this.#selectors = sorted.filter((pa) => pa.spec.selector !== null);
    for (const pa of sorted) {
      if (pa.spec.mode === 'DISABLE' || [...pa.spec.portLevelMtls.values()].includes('DISABLE')) {
        diags.warn(
          pa,
          'FERRY_TRANSLATE_UNSUPPORTED',
          'spec.mtls.mode',
          'DISABLE is not supported in ambient mode; treated as PERMISSIVE (remove the namespace from the mesh to turn mTLS off)',
        );
      }
      if (pa.spec.selector !== null) continue;
      const winner = this.#byNamespace.get(pa.metadata.namespace);
      if (winner === undefined) this.#byNamespace.set(pa.metadata.namespace, pa);
      else {
        const level = pa.metadata.namespace === settings.rootNamespace ? 'mesh-wide' : 'namespace-wide';
        diags.warn(
          pa,
          'FERRY_TRANSLATE_CONFLICT',
          'spec',
          `another ${level} PeerAuthentication (${winner.metadata.name}) is older and wins; this one is ignored`,
        );
      }
    }
    this.#mesh = this.#byNamespace.get(settings.rootNamespace) ?? null;
  }

  /** The mTLS policy keys for a workload with these labels in this namespace. */
  policiesFor(namespace: string, labels: Labels): MtlsPolicies {
    const meshMode = resolve(this.#mesh?.spec.mode ?? 'UNSET', 'PERMISSIVE');
    const nsMode = resolve(this.#byNamespace.get(namespace)?.spec.mode ?? 'UNSET', meshMode);
    const pa = this.#selectors.find(
      (p) => p.metadata.namespace === namespace && p.spec.selector !== null && matchesLabels(p.spec.selector, labels),
    );
    const mode = pa === undefined ? nsMode : resolve(pa.spec.mode, nsMode);
    if (pa !== undefined && pa.spec.portLevelMtls.size > 0 && pa.metadata.namespace !== this.#settings.rootNamespace) {
      const ports = new Map<number, MtlsMode>([...pa.spec.portLevelMtls].map(([port, m]) => [port, resolve(m, mode)]));
      const converted = portLevelMtlsPolicy({
        namespace: pa.metadata.namespace,
        name: pa.metadata.name,
        defaultMode: mode,
        ports,
      });
      // The converted policy already carries the workload default, so it replaces the static STRICT one.
      if (converted !== null) return { keys: [this.#emit(converted)] };
    }
    return mode === 'STRICT' ? { keys: [this.#emit(staticStrictPolicy(this.#settings.rootNamespace))] } : { keys: [] };
  }

  /** Every policy some workload referenced, in key order. */
  policies(): Authorization[] {
    return [...this.#emitted].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
  }

  #emit(policy: Authorization): PolicyKey {
    const key = policyKey(policy.namespace, policy.name);
    this.#emitted.set(key, policy);
    return key;
  }
}

function resolve(mode: MtlsModeSpec, inherited: MtlsMode): MtlsMode {
  switch (mode) {
    case 'UNSET':
      return inherited;
    case 'STRICT':
      return 'STRICT';
    case 'PERMISSIVE':
    case 'DISABLE':
      return 'PERMISSIVE';
  }
}
