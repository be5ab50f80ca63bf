// Outbound (15001 / SOCKS5 entry): carries out planOutbound for one connection from a local workload
// (docs/architecture.md "How a connection flows through the code"): HBONE through the pool (direct or via a waypoint), plain TCP to a
// workload outside the mesh, or passthrough to a destination outside it. Returns the upstream byte stream;
// the entry point splices it and calls finish() on the returned result. Each connect's outcome feeds the
// outlier detector (ctx.outliers), whose ejected endpoints the next plans leave out of service choices.
import type { Duplex } from 'node:stream';
import { ProxyError } from '../errors.ts';
import { endpointKey, formatAuthority } from '../hbone/authority.ts';
import { dialTcp, isEndpointFailure } from '../hbone/dial.ts';
import { formatSpiffeId } from '../identity/spiffe-id.ts';
import type { IpPort } from '../mesh/ip-addr.ts';
import type { Workload } from '../mesh/types.ts';
import type { ConnectionResult } from './access-log.ts';
import { type OutboundPlan, planOutbound } from './outbound-plan.ts';
import type { ProxyContext } from './proxy-context.ts';

export type OutboundOpenResult =
  | { readonly ok: true; readonly upstream: Duplex; readonly result: ConnectionResult }
  | { readonly ok: false; readonly error: ProxyError; readonly result: ConnectionResult };

export interface OutboundRequest {
  /** Downstream peer address (the app's socket). */
  readonly src: IpPort;
  readonly dst: IpPort;
  readonly signal: AbortSignal;
}

// Endpoint choice needs spread, not unpredictability.
const random = (): number => Math.random();

/** Finds the local workload that owns a source address (a pod IP on this node). */
export function resolveSourceWorkload(ctx: ProxyContext, srcIp: string): Workload | undefined {
  const w = ctx.store.view.workloadByAddress(ctx.network, srcIp);
  return w !== undefined && w.node === ctx.node ? w : undefined;
}

/** Plans and dials one outbound connection; the result is open until the caller finishes it. */
export async function openOutbound(
  ctx: ProxyContext,
  source: Workload,
  req: OutboundRequest,
): Promise<OutboundOpenResult> {
  const now = Date.now();
  const plan = planOutbound({ source, dst: req.dst }, ctx.store.view, {
    random,
    selfPorts: ctx.selfPorts,
    hbonePort: ctx.hbonePort,
    admit: (healthy, keyOf) => ctx.outliers.admit(healthy, keyOf, now),
  });
  const result = ctx.accessLog.startConnection({
    direction: 'outbound',
    srcAddr: formatAuthority(req.src.ip, req.src.port),
    source,
    sourceIdentity: plan.kind === 'hbone' ? plan.sourceIdentity : null,
    mtls: plan.kind === 'hbone',
    destination: destinationOf(plan),
  });
  if (plan.kind === 'reject') return { ok: false, error: plan.error, result };
  if (ctx.drain.signal.aborted)
    return { ok: false, error: new ProxyError('FERRY_DRAINING', 'ztunnel is draining'), result };
  const signal = AbortSignal.any([req.signal, ctx.drain.forceSignal]);
  // Sockets leave from the source pod (its netns when enrolled), so peers see the pod's IP.
  const sockets = ctx.sockets.forWorkload(source);
  try {
    if (plan.kind === 'hbone') {
      const cert = await ctx.certificates.getCertificate(plan.sourceIdentity).catch((cause: unknown) => {
        throw new ProxyError('FERRY_NO_CERTIFICATE', `no certificate for ${formatSpiffeId(plan.sourceIdentity)}`, {
          cause,
        });
      });
      const sourceIp = source.addresses.includes(req.src.ip) ? req.src.ip : source.addresses[0];
      const upstream = await ctx.pool.connect({
        source: cert,
        ...(sourceIp === undefined ? {} : { sourceIp }),
        dst: plan.actualDestination,
        expectedIdentities: plan.expectedIdentities,
        authority: plan.authority,
        headers: {
          forwardedFor: req.src,
          ...(plan.intendedService === null ? {} : { forwardedHost: plan.intendedService.hostname }),
        },
        signal,
        socketFactory: sockets,
      });
      ctx.outliers.recordSuccess(endpointKey(plan.actualDestination));
      return { ok: true, upstream, result };
    }
    const upstream = await dialTcp(plan.actualDestination, {
      timeoutMs: ctx.upstreamConnectTimeoutMs,
      signal,
      sockets,
    });
    if (plan.kind === 'tcp') ctx.outliers.recordSuccess(endpointKey(plan.actualDestination));
    return { ok: true, upstream, result };
  } catch (err) {
    const error =
      err instanceof ProxyError
        ? err
        : new ProxyError('FERRY_UPSTREAM_CONNECT_FAILED', (err as Error).message ?? String(err), { cause: err });
    if (plan.kind !== 'passthrough' && !signal.aborted && isEndpointFailure(error)) {
      const hop = endpointKey(plan.actualDestination);
      const verdict = ctx.outliers.recordFailure(hop, Date.now());
      if (verdict.kind === 'ejected') {
        ctx.logger.warn(
          {
            endpoint: hop,
            ejectedForMs: verdict.untilMs - Date.now(),
            ejections: verdict.ejections,
            error: error.message,
          },
          'endpoint ejected from load balancing after failed connects',
        );
      }
    }
    return { ok: false, error, result };
  }
}

function destinationOf(plan: OutboundPlan) {
  const base = {
    workload: plan.destinationWorkload ?? (plan.kind === 'hbone' ? plan.waypoint : null),
    service: plan.intendedService,
  };
  switch (plan.kind) {
    case 'hbone':
      return {
        ...base,
        addr: formatAuthority(plan.actualDestination.ip, plan.actualDestination.port),
        hboneAddr: plan.authority,
        identity: plan.expectedIdentities[0] ?? null,
      };
    case 'tcp':
    case 'passthrough':
      return { ...base, addr: formatAuthority(plan.actualDestination.ip, plan.actualDestination.port) };
    case 'reject':
      return { ...base, addr: formatAuthority(plan.originalDestination.ip, plan.originalDestination.port) };
  }
}
