// planInbound / planInboundPassthrough: decide what to do with one inbound HBONE CONNECT (15008) or one
// plaintext capture (15006) (docs/architecture.md "How a connection flows through the code"; docs/architecture.md "HBONE (wire contract)"; STYLE.md §2). Pure:
// the authz evaluator is passed in, no sockets or logger. Phase decides the peer-facing status: validating
// the request → 400, finding the target → 503, policy → 401. Deny is a value, never a throw.

import { ProxyError } from '../errors.ts';
import { formatAuthority, parseHboneAuthority } from '../hbone/authority.ts';
import type { SpiffeId } from '../identity/spiffe-id.ts';
import type { AuthzConnection, AuthzVerdict } from '../mesh/authz/types.ts';
import { type IpPort, parseIpAddr, unmapIpv4 } from '../mesh/ip-addr.ts';
import type { MeshView } from '../mesh/mesh-view.ts';
import type { Authorization, IpAddr, Workload } from '../mesh/types.ts';

/** The L4 authorization evaluator (src/mesh/authz/evaluate.ts `evaluateAuthz`), injected. */
export type EvaluateAuthz = (policies: readonly Authorization[], conn: AuthzConnection) => AuthzVerdict;

export interface InboundRequest {
  /** CONNECT `:authority`, untrusted. */
  readonly authority: string;
  /** Local address the peer's TCP connection reached (our in-pod 15008 listener's pod IP). */
  readonly dialedIp: IpAddr;
  /** TCP peer address: the client pod, or its waypoint. */
  readonly peerIp: IpAddr;
  /** From the verified client certificate. */
  readonly peerIdentity: SpiffeId;
}

export interface InboundPassthroughRequest {
  /** Original destination of the plaintext connection (the accepted socket's local address). */
  readonly dst: IpPort;
  readonly peerIp: IpAddr;
}

export interface InboundOptions {
  /** Our own proxy ports: a CONNECT to one of them would loop into this ztunnel. */
  readonly selfPorts: ReadonlySet<number>;
  readonly evaluate: EvaluateAuthz;
  /** Network of our local workloads ("" = default). */
  readonly network?: string;
  /** When set, the destination workload must run on this node. */
  readonly localNode?: string;
}

type AllowVerdict = Extract<AuthzVerdict, { kind: 'allow' }>;

export type InboundPlan =
  | {
      readonly kind: 'forward';
      /** Where to connect inside the destination pod: its IP and the target port. */
      readonly upstream: IpPort;
      readonly conn: AuthzConnection;
      readonly verdict: AllowVerdict;
      readonly destination: Workload;
    }
  | {
      readonly kind: 'reject';
      readonly status: 400 | 401 | 503;
      readonly error: ProxyError;
      /** Known once the target was found (for access-log labels). */
      readonly destination: Workload | null;
      readonly conn: AuthzConnection | null;
      /** Set for 401. */
      readonly verdict: AuthzVerdict | null;
    };

/** Plaintext inbound has no HTTP status to choose; otherwise the same shape. */
export type InboundPassthroughPlan =
  | Extract<InboundPlan, { kind: 'forward' }>
  | {
      readonly kind: 'reject';
      readonly error: ProxyError;
      readonly destination: Workload | null;
      readonly conn: AuthzConnection | null;
      readonly verdict: AuthzVerdict | null;
    };

/** Decides one HBONE CONNECT stream (ztunnel's validate_destination + find_inbound_upstream + assert_rbac). */
export function planInbound(req: InboundRequest, view: MeshView, opts: InboundOptions): InboundPlan {
  const parsed = parseHboneAuthority(req.authority);
  if (!parsed.ok) return reject(400, parsed.error);
  const target = parsed.value;
  const dialed = parseIpAddr(req.dialedIp);
  const dialedIp = dialed.ok ? dialed.value : req.dialedIp;
  // Ferry's waypoints are separate processes, so the authority must always name the dialed pod (§1.8 step 4).
  if (!dialed.ok || unmapIpv4(target.ip) !== unmapIpv4(dialedIp)) {
    const error = new ProxyError('FERRY_HBONE_IP_MISMATCH', `ip mismatch: ${target.ip} != ${dialedIp}`);
    return reject(400, error);
  }
  const found = findLocalTarget(target, view, opts);
  if (!found.ok) return reject(503, found.error, found.destination);
  return authorize(found.destination, target, req.peerIdentity, req.peerIp, view, opts);
}

/** Decides one plaintext inbound connection: authz with no identity, so STRICT's DENY policy applies (§1.9). */
export function planInboundPassthrough(
  req: InboundPassthroughRequest,
  view: MeshView,
  opts: InboundOptions,
): InboundPassthroughPlan {
  const found = findLocalTarget(req.dst, view, opts);
  if (!found.ok)
    return { kind: 'reject', error: found.error, destination: found.destination, conn: null, verdict: null };
  const plan = authorize(found.destination, req.dst, null, req.peerIp, view, opts);
  if (plan.kind === 'forward') return plan;
  return { kind: 'reject', error: plan.error, destination: plan.destination, conn: plan.conn, verdict: plan.verdict };
}

type TargetResult =
  | { readonly ok: true; readonly destination: Workload }
  | { readonly ok: false; readonly error: ProxyError; readonly destination: Workload | null };

function findLocalTarget(target: IpPort, view: MeshView, opts: InboundOptions): TargetResult {
  const network = opts.network ?? '';
  const destination =
    view.workloadByAddress(network, target.ip) ?? view.workloadByAddress(network, unmapIpv4(target.ip));
  if (destination === undefined || (opts.localNode !== undefined && destination.node !== opts.localNode)) {
    const error = new ProxyError('FERRY_UNKNOWN_TARGET', `no local workload at ${target.ip}`);
    return { ok: false, error, destination: null };
  }
  if (opts.selfPorts.has(target.port)) {
    const where = formatAuthority(target.ip, target.port);
    return {
      ok: false,
      error: new ProxyError('FERRY_SELF_CALL', `refusing to proxy to our own port ${where}`),
      destination,
    };
  }
  return { ok: true, destination };
}

function authorize(
  destination: Workload,
  target: IpPort,
  srcIdentity: SpiffeId | null,
  srcIp: IpAddr,
  view: MeshView,
  opts: InboundOptions,
): InboundPlan {
  const conn: AuthzConnection = { srcIdentity, srcIp, dstIp: target.ip, dstPort: target.port };
  const verdict = opts.evaluate(view.policiesFor(destination), conn);
  if (verdict.kind === 'allow') return { kind: 'forward', upstream: target, conn, verdict, destination };
  const message =
    verdict.code === 'FERRY_AUTHZ_DENIED'
      ? `connection to ${formatAuthority(target.ip, target.port)} denied by policy ${verdict.policy}`
      : `connection to ${formatAuthority(target.ip, target.port)}: allow policies exist, but none allowed`;
  return { kind: 'reject', status: 401, error: new ProxyError(verdict.code, message), destination, conn, verdict };
}

function reject(status: 400 | 503, error: ProxyError, destination: Workload | null = null): InboundPlan {
  return { kind: 'reject', status, error, destination, conn: null, verdict: null };
}
