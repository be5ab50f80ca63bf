// A hand-rolled HBONE client for tests (ztunnel's tests do the same): a raw http2.connect over mTLS that
// can send what the real pool never would (GET, bad authorities), plus a fixture that runs an HboneServer
// whose onConnect dials the authority directly, the way the inbound path does after authorization.
import { once } from 'node:events';
import {
  type ClientHttp2Session,
  connect as h2connect,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import {
  type HboneConnectRequest,
  HboneServer,
  type HboneServerEvent,
  type HboneServerOptions,
  type HboneTunnel,
} from '../../src/hbone/server.ts';
import type { SpiffeId } from '../../src/identity/spiffe-id.ts';
import { buildTlsContexts, hboneClientTlsOptions } from '../../src/identity/tls-context.ts';
import type { WorkloadCertificate } from '../../src/identity/workload-certificate.ts';
import { splice } from '../../src/ztunnel/splice.ts';

/** Opens a raw HTTP/2-over-mTLS session to an HBONE server, resolved once the server's SETTINGS arrived. */
export async function openRawHboneSession(
  addr: { ip: string; port: number },
  cert: WorkloadCertificate,
  expected: readonly SpiffeId[],
): Promise<ClientHttp2Session> {
  const socket = tlsConnect({
    host: addr.ip,
    port: addr.port,
    ...hboneClientTlsOptions(buildTlsContexts(cert), expected),
  });
  const session = h2connect(`https://${addr.ip}:${addr.port}`, { createConnection: () => socket });
  session.on('error', () => {});
  await Promise.race([
    once(session, 'remoteSettings'),
    once(session, 'close').then(() => Promise.reject(new Error('session closed before SETTINGS'))),
    once(socket, 'error'), // a late TLS alert does not reach the session (see HboneConnection.dial)
  ]);
  return session;
}

/** Sends one request with arbitrary headers; resolves with the response status (or the reset code). */
export async function rawRequest(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
): Promise<{ status: number | null; rstCode: number | null }> {
  const stream = session.request(headers, { endStream: false });
  stream.on('error', () => {});
  const outcome = await new Promise<{ status: number | null; rstCode: number | null }>((resolve) => {
    stream.once('response', (h: IncomingHttpHeaders) => resolve({ status: Number(h[':status']), rstCode: null }));
    stream.once('close', () => resolve({ status: null, rstCode: stream.rstCode ?? null }));
  });
  stream.close();
  return outcome;
}

export interface HboneFixture extends AsyncDisposable {
  readonly server: HboneServer;
  readonly requests: HboneConnectRequest[];
  readonly peerErrors: HboneServerEvent[];
}

export type TestConnectHandler = (request: HboneConnectRequest, tunnel: HboneTunnel) => void | Promise<void>;

/** Dials the authority (ip:port) and splices; 503 when that connect fails. */
export const dialAuthority: TestConnectHandler = async (request, tunnel) => {
  const colon = request.authority.lastIndexOf(':');
  const host = request.authority.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(request.authority.slice(colon + 1));
  // As the ztunnel's inbound does: a CONNECT reset by the client during the dial aborts it, and nothing is
  // spliced onto a stream that is already gone (it would hold the upstream socket forever).
  const upstream = netConnect({ host, port, allowHalfOpen: true, noDelay: true, signal: tunnel.signal });
  upstream.on('error', () => {});
  try {
    await Promise.race([once(upstream, 'connect'), once(upstream, 'error').then(([e]) => Promise.reject(e))]);
  } catch {
    if (!tunnel.signal.aborted) tunnel.reject(503);
    return;
  }
  if (tunnel.signal.aborted) {
    upstream.destroy();
    return;
  }
  await splice(upstream, tunnel.accept());
};

/** Starts an HboneServer on host:0 with the given handler (default: dialAuthority). */
export async function startHboneFixture(
  cert: WorkloadCertificate,
  opts: { host?: string; onConnect?: TestConnectHandler; extra?: Partial<HboneServerOptions> } = {},
): Promise<HboneFixture> {
  const requests: HboneConnectRequest[] = [];
  const peerErrors: HboneServerEvent[] = [];
  const handler = opts.onConnect ?? dialAuthority;
  const server = await HboneServer.listen({
    host: opts.host ?? '127.0.0.1',
    port: 0,
    certificate: cert,
    onConnect: (req, tunnel) => {
      requests.push(req);
      return handler(req, tunnel);
    },
    onPeerError: (e) => peerErrors.push(e),
    ...opts.extra,
  });
  return { server, requests, peerErrors, [Symbol.asyncDispose]: () => server.close({ graceful: false }) };
}
