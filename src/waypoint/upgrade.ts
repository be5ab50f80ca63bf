// An HTTP/1.1 Upgrade (WebSocket) at the waypoint: authorized and routed like any request (route and
// weights; other filters do not apply to a raw byte stream), then the request head is replayed to the
// chosen pod over its tunnel and both byte streams are spliced.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { selectRoute } from '../../gateway-api/match.ts';
import type { RequestView, ServiceBackend } from '../../gateway-api/types.ts';
import type { BackendSplitter } from '../../gateway-api/weights.ts';
import { formatSpiffeId } from '../identity/spiffe-id.ts';
import type { Logger } from '../runtime/logger.ts';
import { evaluateL7, policiesFor } from './authz/evaluate.ts';
import { pickServiceEndpoint } from './endpoints.ts';
import type { DownstreamContext } from './state.ts';
import { serviceName, type WaypointState } from './state.ts';
import type { UpstreamClient } from './upstream/client.ts';
import { fromIncomingHeaders } from './upstream/headers.ts';

export interface UpgradeDeps {
  readonly state: () => WaypointState;
  readonly client: UpstreamClient;
  readonly log: Logger;
  readonly random: () => number;
  readonly splitter: BackendSplitter;
  readonly hbonePort: number;
}

/**
 * An HTTP/1.1 Upgrade (WebSocket): authorized and routed like any request (route, weights; filters other
 * than the backend choice do not apply), then the request head is replayed to the chosen pod and both
 * byte streams are spliced.
 */
export async function serveUpgrade(
  deps: UpgradeDeps,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  ctx: DownstreamContext,
): Promise<void> {
  const state = deps.state();
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const headers = fromIncomingHeaders(req.headers);
  const view: RequestView = {
    method: req.method ?? 'GET',
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? '' : url.slice(q + 1),
    headers,
  };
  const svc = ctx.target.service;
  const svcRef = { namespace: svc.namespace, name: serviceName(svc) };
  const refuse = (status: number, reason: string) => {
    deps.log.info({ msg: 'upgrade', path: view.path, response_code: status }, reason);
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  };
  const verdict = evaluateL7(policiesFor(state.policies, state.identity, svcRef), {
    sourcePrincipal: formatSpiffeId(ctx.sourceIdentity),
    sourceIp: ctx.sourceIp,
    method: view.method,
    path: view.path,
    host: String(req.headers.host ?? ''),
    port: ctx.target.port.servicePort,
    headers,
  });
  if (!verdict.allowed) return refuse(403, 'Forbidden');
  let backend: ServiceBackend = { ...svcRef, port: ctx.target.port.servicePort };
  const table = state.routes.forServicePort(
    svcRef.namespace,
    svcRef.name,
    ctx.target.port.servicePort,
    ctx.sourceIdentity.namespace,
  );
  if (table !== null) {
    const selected = selectRoute(table, view);
    if (selected === null) return refuse(404, 'Not Found');
    const chosen = deps.splitter.pick(selected.rule.backends);
    if (chosen?.service == null) return refuse(500, 'Internal Server Error');
    backend = chosen.service;
  }
  const service = state.backendService(backend);
  const endpoint =
    service === null
      ? null
      : pickServiceEndpoint(state, service, backend.port, deps.random, deps.hbonePort, deps.client.outliers);
  if (endpoint === null) return refuse(503, 'Service Unavailable');
  let upstream: Duplex;
  try {
    upstream = await deps.client.openRaw(endpoint);
  } catch {
    return refuse(503, 'Service Unavailable');
  }
  const lines = [`${view.method} ${url} HTTP/1.1`];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
  upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
  if (head.length > 0) upstream.write(head);
  socket.on('error', () => upstream.destroy());
  upstream.on('error', () => socket.destroy());
  socket.pipe(upstream);
  upstream.pipe(socket);
  socket.once('close', () => upstream.destroy());
  upstream.once('close', () => socket.destroy());
  deps.log.info(
    {
      msg: 'upgrade',
      path: view.path,
      upstream_host: `${endpoint.ip}:${endpoint.port}`,
      upgrade: req.headers.upgrade,
    },
    'upgrade',
  );
}
