// Input and output of L4 authorization (docs/architecture.md "Policy and enrollment", docs/architecture.md "Policy and enrollment").
import type { SpiffeId } from '../../identity/spiffe-id.ts';
import type { IpAddr, PolicyKey } from '../types.ts';

/** What the destination ztunnel knows about a connection when it decides. */
export interface AuthzConnection {
  /** Peer identity from the mTLS client certificate; null for plaintext (15006). */
  readonly srcIdentity: SpiffeId | null;
  /** TCP peer IP of the connection that reached us (client pod, or its waypoint). */
  readonly srcIp: IpAddr;
  readonly dstIp: IpAddr;
  /** Target (container) port, after authority resolution: never 15008. */
  readonly dstPort: number;
}

/** A dry-run policy that would have changed the outcome; logged, never enforced. */
export interface DryRunFinding {
  readonly policy: PolicyKey;
  readonly action: 'Allow' | 'Deny';
  readonly matched: boolean;
}

export type AuthzVerdict =
  | { readonly kind: 'allow'; readonly dryRun: readonly DryRunFinding[] }
  | {
      readonly kind: 'deny';
      readonly code: 'FERRY_AUTHZ_DENIED';
      /** The DENY policy that matched (ns/name). */
      readonly policy: PolicyKey;
      readonly dryRun: readonly DryRunFinding[];
    }
  | { readonly kind: 'deny'; readonly code: 'FERRY_AUTHZ_NOT_ALLOWED'; readonly dryRun: readonly DryRunFinding[] };
