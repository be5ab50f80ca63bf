// Serves one downstream byte stream as HTTP into the request pipeline (docs/architecture.md "How a
// connection flows through the code" step 6): HTTP/2 when the client starts with the h2 preface (h2c prior
// knowledge) or the port's appProtocol says so, HTTP/1.1 otherwise. Used by the waypoint's HBONE ingress
// (a tunnel stream) and by the sidecar's outbound L7 (a captured app socket, src/cli/sidecar-l7.ts).
// Malformed HTTP costs the client its stream only (400 / stream reset).
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { Duplex } from 'node:stream';
import type { Logger } from '../runtime/logger.ts';
import type { RequestPipeline } from './pipeline.ts';
import type { DownstreamContext } from './state.ts';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const MAX_HEADER_BYTES = 16 * 1024;
export const HEADERS_TIMEOUT_MS = 30_000;
/**
 * Idle keep-alive connections are kept an hour, Envoy's default downstream idle_timeout (as in an Istio
 * waypoint). Node's default of 5 s closed the idle ones of a client's pool every 5 s, and the reconnects
 * that followed, all at once, showed up as 50–90 ms stalls for every request in flight.
 */
const KEEP_ALIVE_TIMEOUT_MS = 3_600_000;

/**
 * HTTP/2 with prior knowledge (h2c) starts with the whole connection preface (RFC 9113 §3.4, §3.3);
 * anything else is HTTP/1.x, including a request line that merely begins with "PRI". 'more' while the
 * bytes so far are a strict prefix of the preface.
 */
export function sniffHttpVersion(head: Uint8Array): 'http2' | 'http1' | 'more' {
  const n = Math.min(head.length, H2_PREFACE.length);
  if (Buffer.compare(head.subarray(0, n), H2_PREFACE.subarray(0, n)) !== 0) return 'http1';
  return n === H2_PREFACE.length ? 'http2' : 'more';
}

export interface HttpDownstreamOptions {
  readonly pipeline: RequestPipeline;
  readonly log: Logger;
  /** Who serves (`waypoint`, `sidecar`): the prefix of this module's log messages. */
  readonly role: string;
  /** The port speaks HTTP/2 only (appProtocol http2 / grpc): no sniffing. */
  readonly forcedH2: boolean;
  /**
   * Aborted when the proxy starts draining: idle HTTP/1.1 connections close, later responses carry
   * `Connection: close`, HTTP/2 gets GOAWAY (streams in flight finish), so clients move to new connections.
   */
  readonly closing?: AbortSignal;
}

/** Sniffs the first bytes of `stream`, then serves it as HTTP/1.1 or HTTP/2 through the pipeline. */
export function serveHttpStream(
  stream: Duplex,
  ctx: Omit<DownstreamContext, 'protocol'>,
  opts: HttpDownstreamOptions,
): void {
  // The first bytes decide HTTP/2 or HTTP/1.1; they may arrive in any number of chunks (at most the
  // 24 bytes of the preface are held back while they could still be one).
  const held: Buffer[] = [];
  // Until they arrive no HTTP server (and none of its timeouts) holds the stream: allow as long as for
  // a request's headers.
  const firstBytes = setTimeout(destroyStream, HEADERS_TIMEOUT_MS, stream);
  firstBytes.unref();
  stream.once('close', () => clearTimeout(firstBytes));
  const onData = (chunk: Buffer): void => {
    held.push(chunk);
    const head = held.length === 1 ? chunk : Buffer.concat(held);
    const version = opts.forcedH2 ? 'http2' : sniffHttpVersion(head);
    if (version === 'more') return;
    clearTimeout(firstBytes);
    stream.off('data', onData);
    stream.off('end', onEarlyEnd);
    stream.pause();
    stream.unshift(head);
    if (version === 'http2') serveHttp2(stream, { ...ctx, protocol: 'http2' }, opts);
    else serveHttp1(stream, { ...ctx, protocol: 'http1' }, opts);
    stream.resume();
  };
  // The client ended inside a preface: no request to answer.
  const onEarlyEnd = (): void => {
    stream.destroy();
  };
  stream.on('data', onData);
  stream.once('end', onEarlyEnd);
}

function serveHttp1(stream: Duplex, ctx: DownstreamContext, opts: HttpDownstreamOptions): void {
  // One server per connection, so these are this connection's responses in flight. (The server never
  // listens, so its own idle-connection tracking, closeIdleConnections(), knows nothing of this one.)
  const inFlight = new Set<http.ServerResponse>();
  const closeIfIdle = (): void => {
    if (inFlight.size === 0) stream.end();
  };
  const server = http.createServer(
    {
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: 0,
      keepAlive: true,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    },
    (req, res) => {
      if (opts.closing?.aborted === true) res.setHeader('connection', 'close');
      inFlight.add(res);
      res.once('close', () => {
        inFlight.delete(res);
        if (opts.closing?.aborted === true) closeIfIdle();
      });
      void opts.pipeline.handle(req, res, ctx);
    },
  );
  onClosing(stream, opts.closing, () => {
    for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
    closeIfIdle();
  });
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    opts.log.info({ code: err.code, error: err.message }, `${opts.role}: malformed HTTP/1.1 request`);
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    void opts.pipeline.handleUpgrade(req, socket, head, ctx);
  });
  server.emit('connection', stream);
}

function serveHttp2(raw: Duplex, ctx: DownstreamContext, opts: HttpDownstreamOptions): void {
  // node:http2 reads a net.Socket straight from its native handle, which would skip the preface bytes
  // unshifted after the sniff; through a JS Duplex it reads them (an HBONE stream is one already).
  const stream = raw instanceof net.Socket ? Duplex.from({ readable: raw, writable: raw }) : raw;
  if (stream !== raw) {
    stream.on('error', () => raw.destroy());
    raw.once('close', () => stream.destroy());
  }
  const server = http2.createServer(
    { maxHeaderListPairs: 256, maxSessionMemory: 16 },
    (req, res) => void opts.pipeline.handle(req, res, ctx),
  );
  server.on('sessionError', (err) => {
    opts.log.info({ error: err.message }, `${opts.role}: HTTP/2 session error`);
  });
  server.on('session', (session) => {
    session.on('error', () => session.destroy());
    stream.once('close', () => session.destroy());
    if (opts.closing?.aborted === true) session.once('stream', () => session.close());
    else onClosing(stream, opts.closing, () => session.close());
  });
  server.emit('connection', stream);
}

/**
 * Runs `close` when `signal` aborts, while `stream` is open. A connection that arrives already draining is
 * left to its first request (answered with Connection: close, or its stream finishing before GOAWAY).
 */
function onClosing(stream: Duplex, signal: AbortSignal | undefined, close: () => void): void {
  if (signal === undefined || signal.aborted) return;
  signal.addEventListener('abort', close, { once: true });
  stream.once('close', () => signal.removeEventListener('abort', close));
}

function destroyStream(stream: Duplex): void {
  stream.destroy();
}
