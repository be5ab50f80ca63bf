// HTTP/2 (h2c prior knowledge) from the waypoint to one pod, for backends whose appProtocol says http2 or
// grpc: one multiplexed session per endpoint over one tunnel stream, requests as streams, trailers (gRPC
// status) passed through. A session that fails or goes away is forgotten; the next request opens another.
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import type { Duplex } from 'node:stream';
import { fromIncomingHeaders, toOutgoingHeaders } from './headers.ts';
import type { UpstreamEndpoint, UpstreamRequest, UpstreamResponse } from './types.ts';
import { UpstreamError } from './types.ts';

const endpointKey = (e: UpstreamEndpoint) =>
  `${e.ip}:${e.port}|${e.tunnel.kind === 'hbone' ? `${e.tunnel.identity.namespace}/${e.tunnel.identity.serviceAccount}` : 'plain'}`;

export class H2Sessions {
  readonly #open: (endpoint: UpstreamEndpoint) => Promise<Duplex>;
  readonly #sessions = new Map<string, Promise<ClientHttp2Session>>();

  constructor(open: (endpoint: UpstreamEndpoint) => Promise<Duplex>) {
    this.#open = open;
  }

  #session(endpoint: UpstreamEndpoint): Promise<ClientHttp2Session> {
    const key = endpointKey(endpoint);
    const existing = this.#sessions.get(key);
    if (existing !== undefined) return existing;
    const created = this.#open(endpoint).then((tunnel) => {
      const session = http2.connect(`http://${endpoint.ip}:${endpoint.port}`, { createConnection: () => tunnel });
      const forget = () => {
        if (this.#sessions.get(key) === created) this.#sessions.delete(key);
      };
      session.on('error', forget);
      session.on('close', forget);
      session.on('goaway', forget);
      return session;
    });
    created.catch(() => this.#sessions.delete(key));
    this.#sessions.set(key, created);
    return created;
  }

  async request(endpoint: UpstreamEndpoint, req: UpstreamRequest, signal: AbortSignal): Promise<UpstreamResponse> {
    const session = await this.#session(endpoint);
    return new Promise((resolve, reject) => {
      // `te: trailers` is the one hop-by-hop header HTTP/2 keeps (gRPC requires it).
      const te = req.headers.get('te')?.some((v) => v.toLowerCase().includes('trailers')) === true;
      const headers = {
        ...toOutgoingHeaders(req.headers),
        ...(te ? { te: 'trailers' } : {}),
        ':method': req.method,
        ':path': req.path,
        ':authority': req.authority,
        ':scheme': 'http',
      };
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request(headers, { signal });
      } catch (err) {
        reject(new UpstreamError('FERRY_UPSTREAM_RESET', `${endpoint.ip}:${endpoint.port}: ${(err as Error).message}`));
        return;
      }
      let trailers: IncomingHttpHeaders = {};
      stream.on('trailers', (t: IncomingHttpHeaders) => {
        trailers = t;
      });
      stream.once('response', (h: IncomingHttpHeaders) => {
        resolve({
          status: Number(h[':status'] ?? 502),
          headers: fromIncomingHeaders(h),
          body: stream,
          trailers: () => fromIncomingHeaders(trailers),
          endpoint,
        });
      });
      stream.once('error', (err: Error) => {
        if (err.name === 'AbortError') reject(err);
        else reject(new UpstreamError('FERRY_UPSTREAM_RESET', `${endpoint.ip}:${endpoint.port}: ${err.message}`));
      });
      stream.once('close', () =>
        reject(
          new UpstreamError('FERRY_UPSTREAM_RESET', `${endpoint.ip}:${endpoint.port}: stream closed before a response`),
        ),
      );
      if (req.body === null) stream.end();
      else if (Buffer.isBuffer(req.body)) stream.end(req.body);
      else req.body.pipe(stream);
    });
  }

  close(): void {
    for (const s of this.#sessions.values()) s.then((session) => session.destroy()).catch(() => {});
    this.#sessions.clear();
  }
}
