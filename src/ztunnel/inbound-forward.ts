// The part both inbound paths share once a plan says "forward": track the connection (late rejection,
// drain), connect to the app inside the pod from 127.0.0.6, answer the downstream (HBONE 200 / keep the
// plaintext socket), splice, and record one result. Also logs dry-run policy findings (Istio logs them, never
// enforces them).
import type { Duplex } from 'node:stream';
import { ProxyError } from '../errors.ts';
import { dialTcp } from '../hbone/dial.ts';
import type { AuthzVerdict } from '../mesh/authz/types.ts';
import type { ConnectionResult } from './access-log.ts';
import type { InboundPlan } from './inbound-plan.ts';
import type { ProxyContext } from './proxy-context.ts';
import { splice } from './splice.ts';

type ForwardPlan = Extract<InboundPlan, { kind: 'forward' }>;

/** How to answer the downstream: refuse (503 or a reset) or accept (returns its byte stream). */
export interface Downstream {
  /** Aborted when the downstream goes away before it was answered. */
  readonly signal?: AbortSignal;
  refuse(): void;
  accept(): Duplex;
}

/** Carries out a forward plan. Never throws: every outcome is answered and recorded on `result`. */
export async function forwardToApp(
  ctx: ProxyContext,
  plan: ForwardPlan,
  result: ConnectionResult,
  downstream: Downstream,
): Promise<void> {
  using _work = ctx.drain.track();
  // Tracked before connecting so a policy change during the dial cannot be missed.
  const lateRejection = new AbortController();
  using _tracked = ctx.connections.track({
    conn: plan.conn,
    destination: plan.destination,
    abort: (error) => lateRejection.abort(error),
  });
  const stop = AbortSignal.any([lateRejection.signal, ctx.drain.forceSignal]);
  let app: Awaited<ReturnType<typeof dialTcp>>;
  try {
    app = await dialTcp(plan.upstream, {
      localAddress: ctx.inboundSourceAddress,
      sockets: ctx.sockets.forWorkload(plan.destination),
      timeoutMs: ctx.upstreamConnectTimeoutMs,
      signal: downstream.signal === undefined ? stop : AbortSignal.any([downstream.signal, stop]),
    });
  } catch (err) {
    downstream.refuse();
    result.fail(asProxyError(err, lateRejection.signal, ctx.drain.forceSignal));
    return;
  }
  let peer: Duplex;
  try {
    peer = downstream.accept();
  } catch (err) {
    app.destroy();
    result.fail(asProxyError(err, lateRejection.signal, ctx.drain.forceSignal));
    return;
  }
  const spliced = await splice(app, peer, { signal: stop });
  // splice counts from the app socket's side: what it read came from the app (the response direction).
  const totals = { bytesSent: spliced.bytesReceived, bytesReceived: spliced.bytesSent };
  const reason = lateRejection.signal.aborted ? lateRejection.signal.reason : spliced.error;
  if (reason === undefined) result.finish(totals);
  else result.fail(asProxyError(reason, lateRejection.signal, ctx.drain.forceSignal), {}, totals);
}

/** The error to record: a late rejection or a forced drain wins over what the socket reported. */
export function asProxyError(err: unknown, late: AbortSignal, force: AbortSignal): ProxyError {
  if (late.aborted && late.reason instanceof ProxyError) return late.reason;
  if (force.aborted) return new ProxyError('FERRY_DRAINING', 'connection closed at the drain deadline', { cause: err });
  if (err instanceof ProxyError) return err;
  const e = err as { code?: string; message?: string };
  return new ProxyError('FERRY_UPSTREAM_CONNECT_FAILED', e.message ?? String(err), { cause: err });
}

/** The DENY policy to name in the access log, if an explicit deny decided. */
export function denyingPolicy(verdict: AuthzVerdict | null): { policy: string } | Record<string, never> {
  return verdict?.kind === 'deny' && verdict.code === 'FERRY_AUTHZ_DENIED' ? { policy: verdict.policy } : {};
}

/** Dry-run policies never change the outcome; Istio logs what they would have done. */
export function logDryRun(ctx: ProxyContext, verdict: AuthzVerdict | null, src: string, dst: string): void {
  if (verdict === null || verdict.dryRun.length === 0) return;
  for (const finding of verdict.dryRun) {
    const wouldDeny = finding.action === 'Deny' ? finding.matched : !finding.matched;
    ctx.logger.info(
      { scope: 'authz', policy: finding.policy, action: finding.action, matched: finding.matched, src, dst },
      wouldDeny ? 'dry-run policy would deny' : 'dry-run policy would allow',
    );
  }
}
