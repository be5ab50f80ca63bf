// Who may obtain which identity from the CA. docs/architecture.md "Identity": "The CA may only issue an identity to the
// ztunnel of the node that runs a pod with that service account". The node-bound authorizer learns the
// calling node from its bearer token and asks a callback (supplied by the controller, which knows where pods
// run) whether that node may hold the identity. Decisions are values; tokens are never logged or echoed.
// Two steps, so the CA spends nothing on strangers: `authenticate` (who calls, from the metadata alone,
// cheap) runs before the CSR is parsed or verified; `authorize` (may this caller hold that identity) after.
import { timingSafeEqual } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { formatSpiffeId, type SpiffeId } from './spiffe-id.ts';

export interface CaCallerRequest {
  readonly metadata: grpc.Metadata;
  /** The caller's address as gRPC reports it (`ipv4:1.2.3.4:5678`), for logs. */
  readonly peer: string;
}

export interface CaAuthzRequest extends CaCallerRequest {
  /** The identity that would be issued (CSR SAN, equal to ImpersonatedIdentity when that was sent). */
  readonly requested: SpiffeId;
  /** The caller `authenticate` found (a node name), if the authorizer names callers. */
  readonly caller?: string;
}

export type CaAuthnDecision =
  | { readonly ok: true; readonly caller?: string }
  | { readonly ok: false; readonly code: 'FERRY_CA_UNAUTHENTICATED'; readonly reason: string };

export type CaRefusalCode = 'FERRY_CA_UNAUTHENTICATED' | 'FERRY_CA_IDENTITY_NOT_ON_NODE' | 'FERRY_CA_PERMISSION_DENIED';

export type CaAuthzDecision =
  | { readonly ok: true; readonly node?: string }
  | { readonly ok: false; readonly code: CaRefusalCode; readonly reason: string; readonly node?: string };

export interface CaAuthorizer {
  /**
   * Who calls, from the call's metadata only; runs for every request before the CSR is parsed. Static tokens
   * answer synchronously; a TokenReview authenticator (src/controller/ca-token-review.ts) asks the API, so
   * it may return a promise (and must refuse, never allow, when it cannot get an answer).
   */
  authenticate(req: CaCallerRequest): CaAuthnDecision | Promise<CaAuthnDecision>;
  authorize(req: CaAuthzRequest): CaAuthzDecision | Promise<CaAuthzDecision>;
}

/** Issues any identity of the trust domain to anyone who can reach the CA: local mode and tests only. */
export function allowAll(): CaAuthorizer {
  return { authenticate: () => ({ ok: true }), authorize: () => ({ ok: true }) };
}

export interface NodeBoundOptions {
  /** Bearer token → node name (e.g. each node's ztunnel service-account token). */
  readonly tokens: ReadonlyMap<string, string>;
  /** Whether `node` runs a workload with `identity` (the controller: "a pod with that SA on that node"). */
  readonly mayHold: (node: string, identity: SpiffeId) => boolean | Promise<boolean>;
}

/** Binds identities to nodes: a caller gets only identities of workloads running on its own node. */
export function nodeBoundAuthorizer(opts: NodeBoundOptions): CaAuthorizer {
  const entries = [...opts.tokens].map(([token, node]) => ({ token: Buffer.from(token), node }));
  const authenticate = (req: CaCallerRequest): CaAuthnDecision => {
    const token = bearerToken(req.metadata);
    if (token === null) {
      return { ok: false, code: 'FERRY_CA_UNAUTHENTICATED', reason: 'no "authorization: Bearer <token>" metadata' };
    }
    const node = findNode(entries, token);
    if (node === null) return { ok: false, code: 'FERRY_CA_UNAUTHENTICATED', reason: 'unknown bearer token' };
    return { ok: true, caller: node };
  };
  return {
    authenticate,
    async authorize(req) {
      // The server passes the caller it authenticated; a direct call authenticates here.
      const authn = req.caller === undefined ? authenticate(req) : ({ ok: true, caller: req.caller } as const);
      if (!authn.ok) return authn;
      const node = authn.caller as string;
      if (await opts.mayHold(node, req.requested)) return { ok: true, node };
      return {
        ok: false,
        code: 'FERRY_CA_IDENTITY_NOT_ON_NODE',
        node,
        reason: `node ${JSON.stringify(node)} runs no workload with identity ${formatSpiffeId(req.requested)}`,
      };
    },
  };
}

/**
 * Several ways to authenticate, tried in order: the first that accepts a caller also authorizes it (a local
 * cluster's node agents hold static node tokens while its waypoint pods present projected ServiceAccount
 * tokens). A caller none accepts is refused with every reason.
 */
export function firstAuthenticating(authorizers: readonly CaAuthorizer[]): CaAuthorizer {
  // The authorizer that accepted a call, for its `authorize` (the same metadata object).
  const chosen = new WeakMap<grpc.Metadata, { authorizer: CaAuthorizer; caller?: string }>();
  const authenticate = async (req: CaCallerRequest): Promise<CaAuthnDecision> => {
    const reasons: string[] = [];
    for (const authorizer of authorizers) {
      const d = await authorizer.authenticate(req);
      if (d.ok) {
        chosen.set(req.metadata, { authorizer, ...(d.caller === undefined ? {} : { caller: d.caller }) });
        return d;
      }
      reasons.push(d.reason);
    }
    return { ok: false, code: 'FERRY_CA_UNAUTHENTICATED', reason: reasons.join('; ') };
  };
  return {
    authenticate,
    async authorize(req) {
      let found = chosen.get(req.metadata);
      if (found === undefined) {
        const authn = await authenticate(req);
        if (!authn.ok) return authn;
        found = chosen.get(req.metadata);
      }
      if (found === undefined) return { ok: false, code: 'FERRY_CA_UNAUTHENTICATED', reason: 'not authenticated' };
      const { caller, ...rest } = req;
      return found.authorizer.authorize(found.caller === undefined ? rest : { ...rest, caller: found.caller });
    },
  };
}

/** The token of an `authorization: Bearer <token>` header, or null. */
export function bearerToken(metadata: grpc.Metadata): string | null {
  for (const value of metadata.get('authorization')) {
    const text = typeof value === 'string' ? value : value.toString('utf8');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(text);
    if (match?.[1] !== undefined) return match[1];
  }
  return null;
}

function findNode(entries: readonly { token: Buffer; node: string }[], token: string): string | null {
  const given = Buffer.from(token);
  let found: string | null = null;
  // Compare against every entry in constant time per entry, so timing reveals neither which token nor how
  // much of it matched.
  for (const e of entries) {
    if (e.token.length === given.length && timingSafeEqual(e.token, given)) found = e.node;
  }
  return found;
}
