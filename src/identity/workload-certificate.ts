// The material a workload presents and trusts: its SVID chain, key, and the trust bundle.
import type { SpiffeId } from './spiffe-id.ts';

export interface WorkloadCertificate {
  readonly identity: SpiffeId;
  readonly privateKeyPem: string;
  /** Leaf first, then intermediates (the root is not included). */
  readonly certChainPem: readonly string[];
  /** Trust bundle: every root this workload accepts peers from. */
  readonly rootsPem: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
}
