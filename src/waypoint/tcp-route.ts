// A connection to a Service port where a TCPRoute applies (docs/architecture.md, "TCPRoute"): one weighted
// backendRef chosen per connection (the same low-discrepancy splitter HTTP rules use, so 1,000 connections
// at 70/30 land 700 ± 1), one healthy pod of that backend Service, a tunnel to it (HBONE in the mesh,
// plain TCP outside), then the bytes spliced both ways with half-close kept. A connection whose share goes
// to an unresolved backend, or that finds no healthy pod or cannot connect, is closed: TCP has no status
// to answer with. One log line per connection.
import type { Duplex } from 'node:stream';
import type { TcpRouteTable } from '../../gateway-api/types.ts';
import type { BackendSplitter } from '../../gateway-api/weights.ts';
import type { Logger } from '../runtime/logger.ts';
import { pickServiceEndpoint } from './endpoints.ts';
import type { WaypointState } from './state.ts';
import type { UpstreamClient } from './upstream/client.ts';

export interface TcpRouteDeps {
  readonly client: UpstreamClient;
  readonly splitter: BackendSplitter;
  readonly hbonePort: number;
  readonly log: Logger;
  readonly random: () => number;
}

export async function serveTcpRoute(
  downstream: Duplex,
  table: TcpRouteTable,
  state: WaypointState,
  deps: TcpRouteDeps,
  source: string,
): Promise<void> {
  const chosen = deps.splitter.pick(table.rule.backends);
  const line: Record<string, unknown> = { route: table.route, source_principal: source, upstream_host: null };
  const refuse = (reason: string): void => {
    deps.log.info({ ...line, reason }, 'tcp connection refused');
    downstream.destroy();
  };
  if (chosen === null) return refuse('no backend with weight');
  if (chosen.service === null) return refuse(`backend not available (${chosen.problem ?? 'invalid'})`);
  line.backend = `${chosen.service.namespace}/${chosen.service.name}:${chosen.service.port}`;
  const service = state.backendService(chosen.service);
  if (service === null) return refuse('backend Service not found');
  const endpoint = pickServiceEndpoint(
    state,
    service,
    chosen.service.port,
    deps.random,
    deps.hbonePort,
    deps.client.outliers,
  );
  if (endpoint === null) return refuse('no healthy endpoint');
  line.upstream_host = `${endpoint.ip}:${endpoint.port}`;
  let upstream: Duplex;
  try {
    upstream = await deps.client.openRaw(endpoint);
  } catch (err) {
    return refuse(`upstream connect failed: ${(err as Error).message}`);
  }
  if (downstream.destroyed) {
    upstream.destroy();
    return;
  }
  let sent = 0;
  let received = 0;
  downstream.on('data', (c: Buffer) => {
    sent += c.length;
  });
  upstream.on('data', (c: Buffer) => {
    received += c.length;
  });
  // pipe() ends the other side on EOF (half-close) and applies backpressure. A side that closes after its
  // clean end leaves the other to finish writing what it still holds (destroying it then reset the tunnel
  // and lost the last bytes); a side that closes abruptly (error, reset) takes the other down with it.
  downstream.pipe(upstream);
  upstream.pipe(downstream);
  upstream.on('error', () => upstream.destroy());
  downstream.on('error', () => downstream.destroy());
  let closed = 0;
  const onClose = (side: Duplex, other: Duplex): void => {
    if (!side.readableEnded || side.errored !== null) other.destroy();
    closed += 1;
    if (closed === 2) deps.log.info({ ...line, bytes_sent: sent, bytes_received: received }, 'tcp connection');
  };
  upstream.once('close', () => onClose(upstream, downstream));
  downstream.once('close', () => onClose(downstream, upstream));
}
