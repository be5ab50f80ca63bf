// HBONE inbound (port 15008): carries out planInbound for one CONNECT stream, in ztunnel's phases
// (reference/ztunnel-anchor.md §1.8): plan (authority, target, authz) → track → connect the app from
// 127.0.0.6 → 200 → splice. The 200 is sent only after policy passed and the upstream connected
// (DESIGN.md §5.1). Decisions live in inbound-plan.ts; this module owns sockets, logs and metrics.
import type { Duplex } from 'node:stream';
import { evaluateAuthz } from './authz/evaluate.ts';
import { ProxyError } from './errors.ts';
import { formatAuthority } from './hbone/authority.ts';
import type { HboneConnectRequest, HboneTunnel } from './hbone/server.ts';
import { planInbound } from './inbound-plan.ts';
import type { ProxyContext } from './proxy-context.ts';
import { splice } from './splice.ts';
import { dialTcp } from './upstream.ts';

/** Serves one CONNECT stream. Never throws: every outcome is answered and recorded. */
export async function serveHboneConnect(
  ctx: ProxyContext,
  req: HboneConnectRequest,
  tunnel: HboneTunnel,
): Promise<void> {
  const view = ctx.store.view;
  const result = ctx.accessLog.startConnection({
    direction: 'inbound',
    srcAddr: formatAuthority(req.peer.ip, req.peer.port),
    source: view.workloadByAddress(ctx.network, req.peer.ip) ?? null,
    sourceIdentity: req.peerIdentity,
    mtls: true,
  });
  if (ctx.drain.signal.aborted) {
    tunnel.reject(503);
    result.fail(new ProxyError('FERRY_DRAINING', 'ztunnel is draining'));
    return;
  }
  const plan = planInbound(
    { authority: req.authority, dialedIp: req.dialedIp, peerIp: req.peer.ip, peerIdentity: req.peerIdentity },
    view,
    { selfPorts: ctx.selfPorts, evaluate: evaluateAuthz, network: ctx.network, localNode: ctx.node },
  );
  const hboneAddr = req.authority.length <= 64 ? req.authority : null;
  if (plan.kind === 'reject') {
    result.setDestination({
      addr: formatAuthority(req.dialedIp, req.dialedPort),
      hboneAddr,
      workload: plan.destination,
      identity: null,
    });
    tunnel.reject(plan.status);
    const policy =
      plan.verdict?.kind === 'deny' && plan.verdict.code === 'FERRY_AUTHZ_DENIED' ? plan.verdict.policy : undefined;
    result.fail(plan.error, policy === undefined ? {} : { policy });
    return;
  }
  const destination = plan.destination;
  result.setDestination({
    addr: formatAuthority(plan.upstream.ip, plan.upstream.port),
    hboneAddr,
    workload: destination,
    service: null,
    identity: null,
  });
  using _work = ctx.drain.track();
  // Tracked before connecting so a policy change during the dial cannot be missed.
  const lateRejection = new AbortController();
  using _tracked = ctx.connections.track({
    conn: plan.conn,
    destination,
    abort: (error) => lateRejection.abort(error),
  });
  let upstream: Awaited<ReturnType<typeof dialTcp>>;
  try {
    upstream = await dialTcp(plan.upstream, {
      localAddress: ctx.inboundSourceAddress,
      sockets: ctx.sockets.forWorkload(destination),
      timeoutMs: ctx.upstreamConnectTimeoutMs,
      signal: AbortSignal.any([tunnel.signal, lateRejection.signal, ctx.drain.forceSignal]),
    });
  } catch (err) {
    tunnel.reject(503);
    result.fail(asProxyError(err, lateRejection.signal, ctx.drain.forceSignal));
    return;
  }
  let stream: Duplex;
  try {
    stream = tunnel.accept();
  } catch (err) {
    upstream.destroy();
    result.fail(asProxyError(err, lateRejection.signal, ctx.drain.forceSignal));
    return;
  }
  const spliced = await splice(upstream, stream, {
    signal: AbortSignal.any([lateRejection.signal, ctx.drain.forceSignal]),
  });
  // splice counts from the app socket's side: bytes it read came from the app (response direction).
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
