// HBONE inbound (port 15008): carries out planInbound for one CONNECT stream, in ztunnel's phases
// (docs/architecture.md "How a connection flows through the code"): plan (authority, target, authz) → track → connect the app from
// 127.0.0.6 → 200 → splice (inbound-forward.ts). The 200 is sent only after policy passed and the upstream connected
// (docs/architecture.md "HBONE (wire contract)"). Decisions live in inbound-plan.ts; this module owns sockets, logs and metrics.

import { ProxyError } from '../errors.ts';
import { formatAuthority } from '../hbone/authority.ts';
import type { HboneConnectRequest, HboneTunnel } from '../hbone/server.ts';
import { evaluateAuthz } from '../mesh/authz/evaluate.ts';
import { workloadIdentity } from '../mesh/mesh-view.ts';
import type { Service } from '../mesh/types.ts';
import { denyingPolicy, forwardToApp, logDryRun } from './inbound-forward.ts';
import { planInbound } from './inbound-plan.ts';
import type { ProxyContext } from './proxy-context.ts';

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
  logDryRun(ctx, plan.verdict, formatAuthority(req.peer.ip, req.peer.port), hboneAddr ?? req.dialedIp);
  if (plan.kind === 'reject') {
    result.setDestination({
      addr: formatAuthority(req.dialedIp, req.dialedPort),
      hboneAddr,
      workload: plan.destination,
      identity: plan.destination === null ? null : workloadIdentity(plan.destination),
    });
    tunnel.reject(plan.status);
    result.fail(plan.error, denyingPolicy(plan.verdict));
    return;
  }
  result.setDestination({
    addr: formatAuthority(plan.upstream.ip, plan.upstream.port),
    hboneAddr,
    workload: plan.destination,
    service: destinationService(view.servicesOf(plan.destination), req.headers.forwarded),
    identity: workloadIdentity(plan.destination),
  });
  await forwardToApp(ctx, plan, result, {
    signal: tunnel.signal,
    refuse: () => tunnel.reject(503),
    accept: () => tunnel.accept(),
  });
}

/**
 * The service the client addressed, for telemetry only (never policy): the `host=` of the `forwarded`
 * header among the destination's services, as Istio's ztunnel does; the only service when there is one.
 */
function destinationService(services: readonly Service[], forwarded: string | undefined): Service | null {
  const host = forwarded === undefined ? undefined : /(?:^|;)\s*host=("?)([^";,\s]+)\1/i.exec(forwarded)?.[2];
  if (host !== undefined) {
    const named = services.find((s) => s.hostname === host);
    if (named !== undefined) return named;
  }
  return services.length === 1 ? (services[0] ?? null) : null;
}
