// Plaintext inbound (the 15006 semantics, docs/architecture.md "How a connection flows through the code"): a connection that reached a
// local workload without HBONE. Authorization runs with no peer identity, so STRICT mTLS (a DENY of
// connections without a principal) refuses it. Entry point for the BPF sk_lookup listener and, on loopback,
// for the configured plaintext forwards.
import type { Socket } from 'node:net';
import { ProxyError } from '../errors.ts';
import { formatAuthority } from '../hbone/authority.ts';
import { evaluateAuthz } from '../mesh/authz/evaluate.ts';
import type { IpPort } from '../mesh/ip-addr.ts';
import { denyingPolicy, forwardToApp, logDryRun } from './inbound-forward.ts';
import { planInboundPassthrough } from './inbound-plan.ts';
import type { ProxyContext } from './proxy-context.ts';

/** Serves one accepted plaintext socket addressed to `originalDst`. Never throws. */
export async function servePlaintextInbound(ctx: ProxyContext, socket: Socket, originalDst: IpPort): Promise<void> {
  socket.on('error', ignore);
  const peerIp = socket.remoteAddress ?? '';
  const view = ctx.store.view;
  const result = ctx.accessLog.startConnection({
    direction: 'inbound',
    srcAddr: formatAuthority(peerIp, socket.remotePort ?? 0),
    source: view.workloadByAddress(ctx.network, peerIp) ?? null,
    sourceIdentity: null,
    mtls: false,
  });
  if (ctx.drain.signal.aborted) {
    socket.resetAndDestroy();
    result.fail(new ProxyError('FERRY_DRAINING', 'ztunnel is draining'));
    return;
  }
  const plan = planInboundPassthrough({ dst: originalDst, peerIp }, view, {
    selfPorts: ctx.selfPorts,
    evaluate: evaluateAuthz,
    network: ctx.network,
    localNode: ctx.node,
  });
  logDryRun(
    ctx,
    plan.verdict,
    formatAuthority(peerIp, socket.remotePort ?? 0),
    formatAuthority(originalDst.ip, originalDst.port),
  );
  result.setDestination({
    addr: formatAuthority(originalDst.ip, originalDst.port),
    workload: plan.destination,
  });
  if (plan.kind === 'reject') {
    // A reset, not a silent close: the client learns at once that it was refused (never a hang).
    socket.resetAndDestroy();
    result.fail(plan.error, denyingPolicy(plan.verdict));
    return;
  }
  await forwardToApp(ctx, plan, result, {
    refuse: () => socket.resetAndDestroy(),
    accept: () => socket,
  });
}

function ignore(): void {}
