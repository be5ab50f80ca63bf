// Outbound entry points: the shared "serve one outbound socket" path (captured 15001 connections) and the
// SOCKS5 glue, both on top of openOutbound. A captured socket is: plan + dial (openOutbound), splice, one
// access-log line; a refused one is reset at once (the app sees a refusal, never a hang).
import type net from 'node:net';
import { ProxyError } from '../errors.ts';
import type { IpPort } from '../mesh/ip-addr.ts';
import type { Workload } from '../mesh/types.ts';
import type { ConnectionResult } from './access-log.ts';
import { openOutbound, resolveSourceWorkload } from './outbound.ts';
import type { ProxyContext } from './proxy-context.ts';
import type { Socks5ConnectRequest } from './socks5.ts';
import { SOCKS5_REP, Socks5Server, socks5RepForError } from './socks5.ts';
import { type SpliceResult, splice } from './splice.ts';

/** Records how a spliced outbound connection ended (bytes as seen from the app's socket). */
export function recordOutboundSplice(result: ConnectionResult, spliced: SpliceResult): void {
  const totals = { bytesSent: spliced.bytesSent, bytesReceived: spliced.bytesReceived };
  if (spliced.error === undefined) result.finish(totals);
  else
    result.fail(
      spliced.error instanceof ProxyError
        ? spliced.error
        : new ProxyError('FERRY_UPSTREAM_CONNECT_FAILED', spliced.error.message, { cause: spliced.error }),
      {},
      totals,
    );
}

export interface OutboundSocketRequest {
  /** The app's address as the access log should show it (the pod IP for captured connections). */
  readonly src: IpPort;
  /** The original destination the app dialed. */
  readonly dst: IpPort;
}

/** Serves one accepted outbound socket from `source` to `req.dst`. Never throws. */
export async function serveOutboundSocket(
  ctx: ProxyContext,
  source: Workload,
  socket: net.Socket,
  req: OutboundSocketRequest,
): Promise<void> {
  socket.on('error', ignore);
  const l7 = ctx.outboundL7;
  if (l7?.claims(source, req.dst)) {
    using _l7work = ctx.drain.track();
    await l7.serve(socket, {
      source,
      src: req.src,
      dst: req.dst,
      sockets: ctx.sockets.forWorkload(source),
      drain: ctx.drain.signal,
      signal: ctx.drain.forceSignal,
    });
    return;
  }
  const closed = new AbortController();
  const onClose = (): void => closed.abort(new ProxyError('FERRY_UPSTREAM_CONNECT_FAILED', 'client went away'));
  socket.once('close', onClose);
  using _work = ctx.drain.track();
  const opened = await openOutbound(ctx, source, { src: req.src, dst: req.dst, signal: closed.signal });
  socket.off('close', onClose);
  if (!opened.ok) {
    socket.resetAndDestroy();
    opened.result.fail(opened.error);
    return;
  }
  if (socket.destroyed) {
    opened.upstream.destroy();
    opened.result.fail(new ProxyError('FERRY_UPSTREAM_CONNECT_FAILED', 'client went away during the connect'));
    return;
  }
  const spliced = await splice(socket, opened.upstream, { signal: ctx.drain.forceSignal });
  recordOutboundSplice(opened.result, spliced);
}

/** The opt-in SOCKS5 entry (15080): the source workload is the one owning the client's address. */
export async function startSocks5(ctx: ProxyContext, address: { host: string; port: number }): Promise<Socks5Server> {
  const results = new WeakMap<Socks5ConnectRequest, ConnectionResult>();
  return Socks5Server.listen({
    host: address.host,
    port: address.port,
    onConnect: async (req) => {
      const source = resolveSourceWorkload(ctx, req.srcIp);
      if (source === undefined) {
        ctx.logger.warn({ code: 'FERRY_UNKNOWN_SOURCE', src: req.srcIp }, 'SOCKS5 client is no local workload');
        return { ok: false, rep: SOCKS5_REP.notAllowed };
      }
      const opened = await openOutbound(ctx, source, {
        src: { ip: req.srcIp, port: req.clientSocket.remotePort ?? 0 },
        dst: req.dst,
        signal: req.signal,
      });
      if (!opened.ok) {
        opened.result.fail(opened.error);
        return { ok: false, rep: socks5RepForError(opened.error) };
      }
      results.set(req, opened.result);
      return { ok: true, upstream: opened.upstream };
    },
    // The client socket is spliced: what it sent went to the destination.
    onClosed: (req, spliced) => {
      const result = results.get(req);
      if (result !== undefined) recordOutboundSplice(result, spliced);
    },
    onClientError: (error, srcIp) =>
      ctx.logger.warn({ code: error.code, src: srcIp, error: error.message }, 'SOCKS5 client refused'),
  });
}

function ignore(): void {}
