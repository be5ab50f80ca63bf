// The CA's caller authentication in Kubernetes mode (docs/architecture.md "Identity", issue 14 §3), as Istio
// does it: the bearer token is a projected ServiceAccount token, checked by a TokenReview for the configured
// audience. Authorization: the ztunnel's ServiceAccount (one `ns/name`) may ask for other identities, but
// only those of workloads the API places on the node of the token's bound pod; every other caller (a waypoint,
// an application) gets only its own `spiffe://<td>/ns/<ns>/sa/<sa>`. Fails closed: no answer from the API
// is a refusal naming why. Positive reviews are cached (bounded, never past the token's own expiry) so a node
// renewing its certificates costs the API one review per token, not one per certificate.
import { createHash } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import type {
  CaAuthnDecision,
  CaAuthorizer,
  CaAuthzDecision,
  CaAuthzRequest,
  CaCallerRequest,
} from '../identity/ca-authz.ts';
import { bearerToken } from '../identity/ca-authz.ts';
import { formatSpiffeId, type SpiffeId, sameSpiffeId, spiffeId } from '../identity/spiffe-id.ts';
import type { TokenReviewApi } from './kube-token-review.ts';

export interface TokenReviewAuthorizerOptions {
  readonly api: TokenReviewApi;
  /** The audience the callers' projected tokens are minted for (the chart's `ca.tokenAudience`). */
  readonly audience: string;
  /**
   * `namespace/name` of the ztunnel's ServiceAccount: the only caller that may request other identities;
   * null: no token caller may (the node agents authenticate otherwise, e.g. a local cluster's node tokens).
   */
  readonly ztunnelServiceAccount: { readonly namespace: string; readonly name: string } | null;
  readonly trustDomain: string;
  /** Whether the API places a workload with `identity` on `node` (the controller's view of the pods). */
  readonly mayHold: (node: string, identity: SpiffeId) => boolean | Promise<boolean>;
  /** Positive reviews kept (default 1024); the oldest goes first. */
  readonly cacheSize?: number;
  /** Longest a positive review is trusted without asking again (default 5 min; never past the token's exp). */
  readonly cacheMs?: number;
  /** TokenReviews in flight at once (default 64); beyond it a caller is refused, to be retried. */
  readonly maxInFlight?: number;
  readonly now?: () => number;
}

/** Who a reviewed token belongs to. */
export interface ReviewedCaller {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The ztunnel's token: the node of its bound pod, else null (not bound to a scheduled pod). */
  readonly node: string | null;
  readonly isZtunnel: boolean;
}

type Review = { ok: true; caller: ReviewedCaller } | { ok: false; reason: string };

const SA_USER = /^system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/;
const NODE_EXTRA = 'authentication.kubernetes.io/node-name';
const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';
const MAX_TOKEN_BYTES = 16_384;

export function tokenReviewAuthorizer(opts: TokenReviewAuthorizerOptions): CaAuthorizer & { readonly cached: number } {
  const now = opts.now ?? Date.now;
  const cacheSize = opts.cacheSize ?? 1024;
  const cacheMs = opts.cacheMs ?? 5 * 60_000;
  const maxInFlight = opts.maxInFlight ?? 64;
  const cache = new Map<string, { caller: ReviewedCaller; until: number }>();
  const inFlight = new Map<string, Promise<Review>>();
  // What `authenticate` found for a call, for its `authorize` (the same metadata object), without a second
  // review and without putting the principal into a string.
  const reviewed = new WeakMap<grpc.Metadata, ReviewedCaller>();
  const zt = opts.ztunnelServiceAccount;

  const review = async (token: string): Promise<Review> => {
    let answer: Awaited<ReturnType<TokenReviewApi['review']>>;
    try {
      answer = await opts.api.review(token, opts.audience);
    } catch (err) {
      return { ok: false, reason: `TokenReview failed, refusing (fail closed): ${describe(err)}` };
    }
    if (!answer.authenticated) return { ok: false, reason: `token rejected by TokenReview: ${answer.error}` };
    const m = SA_USER.exec(answer.username);
    if (m === null) return { ok: false, reason: 'the token is not a ServiceAccount token' };
    const namespace = m[1] as string;
    const serviceAccount = m[3] as string;
    const isZtunnel = zt !== null && namespace === zt.namespace && serviceAccount === zt.name;
    let node: string | null = null;
    if (isZtunnel) {
      const found = await boundNode(answer.extra, namespace);
      if (!found.ok) return found;
      node = found.node;
    }
    return { ok: true, caller: { namespace, serviceAccount, node, isZtunnel } };
  };

  // The node of the token's bound pod: the API's own claim when it sends one, else the pod's spec.nodeName
  // (checked to be the same pod by uid, so a recreated pod of that name on another node does not count).
  const boundNode = async (
    extra: ReadonlyMap<string, readonly string[]>,
    namespace: string,
  ): Promise<{ ok: true; node: string | null } | { ok: false; reason: string }> => {
    const claimed = extra.get(NODE_EXTRA)?.[0];
    if (claimed !== undefined && claimed !== '') return { ok: true, node: claimed };
    const pod = extra.get(POD_NAME_EXTRA)?.[0];
    if (pod === undefined || pod === '') return { ok: true, node: null };
    try {
      const found = await opts.api.podNode(namespace, pod);
      const uid = extra.get(POD_UID_EXTRA)?.[0];
      if (found === null || (uid !== undefined && found.uid !== uid)) return { ok: true, node: null };
      return { ok: true, node: found.node };
    } catch (err) {
      return { ok: false, reason: `cannot look up the token's bound pod, refusing (fail closed): ${describe(err)}` };
    }
  };

  const authenticate = async (req: CaCallerRequest): Promise<CaAuthnDecision> => {
    const token = bearerToken(req.metadata);
    if (token === null) {
      return { ok: false, code: 'FERRY_CA_UNAUTHENTICATED', reason: 'no "authorization: Bearer <token>" metadata' };
    }
    if (token.length > MAX_TOKEN_BYTES) {
      return { ok: false, code: 'FERRY_CA_UNAUTHENTICATED', reason: 'bearer token too long' };
    }
    const key = createHash('sha256').update(token).digest('base64url');
    const hit = cache.get(key);
    if (hit !== undefined && hit.until > now()) {
      reviewed.set(req.metadata, hit.caller);
      return { ok: true, caller: callerName(hit.caller) };
    }
    if (hit !== undefined) cache.delete(key);
    let pending = inFlight.get(key);
    if (pending === undefined) {
      if (inFlight.size >= maxInFlight) {
        return {
          ok: false,
          code: 'FERRY_CA_UNAUTHENTICATED',
          reason: `${inFlight.size} token reviews in progress; retry with backoff`,
        };
      }
      pending = review(token).finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    const result = await pending;
    if (!result.ok) return { ok: false, code: 'FERRY_CA_UNAUTHENTICATED', reason: result.reason };
    const until = Math.min(now() + cacheMs, tokenExpiryMs(token) ?? 0);
    if (until > now()) {
      cache.delete(key);
      cache.set(key, { caller: result.caller, until });
      while (cache.size > cacheSize) cache.delete(cache.keys().next().value as string);
    }
    reviewed.set(req.metadata, result.caller);
    return { ok: true, caller: callerName(result.caller) };
  };

  const authorize = async (req: CaAuthzRequest): Promise<CaAuthzDecision> => {
    let caller = reviewed.get(req.metadata);
    if (caller === undefined) {
      const authn = await authenticate(req);
      if (!authn.ok) return authn;
      caller = reviewed.get(req.metadata) as ReviewedCaller;
    }
    const own = spiffeId(opts.trustDomain, caller.namespace, caller.serviceAccount);
    const node = caller.node ?? undefined;
    if (sameSpiffeId(own, req.requested)) return { ok: true, ...(node === undefined ? {} : { node }) };
    const who = `service account ${caller.namespace}/${caller.serviceAccount}`;
    if (!caller.isZtunnel) {
      return {
        ok: false,
        code: 'FERRY_CA_PERMISSION_DENIED',
        reason: `${who} may only obtain its own identity ${formatSpiffeId(own)}`,
      };
    }
    if (node === undefined) {
      return {
        ok: false,
        code: 'FERRY_CA_PERMISSION_DENIED',
        reason: `the ztunnel token of ${who} is not bound to a pod scheduled on a node`,
      };
    }
    if (await opts.mayHold(node, req.requested)) return { ok: true, node };
    return {
      ok: false,
      code: 'FERRY_CA_IDENTITY_NOT_ON_NODE',
      node,
      reason: `node ${JSON.stringify(node)} runs no workload with identity ${formatSpiffeId(req.requested)}`,
    };
  };

  return {
    authenticate,
    authorize,
    get cached() {
      return cache.size;
    },
  };
}

/** The caller's name for the CA's admission fair share and logs: `ns/sa`, with `@node` for the ztunnel. */
function callerName(c: ReviewedCaller): string {
  return `${c.namespace}/${c.serviceAccount}${c.node === null ? '' : `@${c.node}`}`;
}

/**
 * The token's `exp` in ms, read without verifying (the TokenReview did that): it only bounds how long a
 * positive review is reused. null when the token has no readable exp (then it is not cached).
 */
function tokenExpiryMs(token: string): number | null {
  const payload = token.split('.')[1];
  if (payload === undefined) return null;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    const exp = (claims as { exp?: unknown } | null)?.exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const msg = typeof e?.message === 'string' ? e.message : String(err);
  return `${typeof e?.code === 'string' ? `${e.code}: ` : ''}${msg}`.slice(0, 300);
}

/** Parses `--ztunnel-service-account ns/name`; null when malformed. */
export function parseServiceAccountRef(text: string): { namespace: string; name: string } | null {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(text);
  if (m === null || (m[1] as string).length > 63 || (m[3] as string).length > 253) return null;
  return { namespace: m[1] as string, name: m[3] as string };
}
