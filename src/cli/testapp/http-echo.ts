// `ferry testapp http-echo`: the HTTP/1.1 echo server that stands in for echo images in the local cluster.
// Answers JSON naming the pod (POD_NAME, else the hostname), the request (method, path, query, headers) and
// the peer address the server saw, which is how tests see mTLS/redirection effects and what a proxy in between
// changed (Host, path as rewritten, headers added or removed). Every response carries `x-pod: <pod>` so load
// summaries can count backends without parsing bodies. Directives: directives.ts. An `Upgrade` request
// (WebSocket style) gets 101 and its tunnel echoes bytes back. One JSON log line per request on stdout
// (with Host and x-request-id, so a mirror's copies can be found in its log). Never crashes on bad input:
// bad directives get a 400.

import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { FailureLedger, planEcho } from './directives.ts';

export interface HttpEchoOptions {
  readonly port: number;
  readonly host?: string;
  readonly podName: string;
  readonly namespace?: string;
  readonly log?: (line: Record<string, unknown>) => void;
}

export interface EchoReply {
  readonly pod: string;
  readonly namespace: string | null;
  readonly method: string;
  /** Host (HTTP/1.1 Host header) as the backend received it. */
  readonly host: string;
  readonly path: string;
  /** Path and query exactly as on the request line. */
  readonly url: string;
  readonly query: Record<string, string>;
  readonly headers: Record<string, string | string[]>;
  readonly peer: { readonly address: string; readonly port: number };
  readonly local: { readonly address: string; readonly port: number };
  readonly body: string;
}

export interface RunningHttpEcho extends AsyncDisposable {
  readonly server: Server;
  readonly port: number;
}

const MAX_ECHO_BODY_BYTES = 64 * 1024; // echoed back; beyond it the body is counted but not kept

export async function startHttpEcho(opts: HttpEchoOptions): Promise<RunningHttpEcho> {
  const ledger = new FailureLedger();
  const closing = new AbortController();
  const upgraded = new Set<Duplex>(); // detached from the HTTP server: closed by hand on dispose
  const server = createServer({ requestTimeout: 120_000 }, (req, res) => {
    serve(req, res, opts, ledger, closing.signal).catch((err: unknown) => {
      // Only reachable when the socket died mid-reply or the server is closing: nothing to answer.
      opts.log?.({ msg: 'request failed', error: err instanceof Error ? err.message : String(err) });
      res.destroy();
    });
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    opts.log?.({ msg: 'upgrade', upgrade: req.headers.upgrade, host: req.headers.host, path: req.url });
    socket.on('error', () => undefined);
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${String(req.headers.upgrade).replace(/[\r\n]/g, '')}\r\nx-pod: ${opts.podName}\r\n\r\n`,
    );
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  server.listen(opts.port, opts.host ?? '0.0.0.0');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    async [Symbol.asyncDispose]() {
      closing.abort();
      for (const s of upgraded) s.destroy();
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
}

async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  opts: HttpEchoOptions,
  ledger: FailureLedger,
  signal: AbortSignal,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://echo.invalid');
  const body = await readBody(req);
  const plan = planEcho(url.searchParams, req.headers, (id) => ledger.count(id));
  const requestId = typeof req.headers['x-request-id'] === 'string' ? req.headers['x-request-id'] : '';
  const injected = plan.kind === 'fail-status' || plan.kind === 'fail-reset' || plan.kind === 'fail-slow';
  if (injected) ledger.increment(requestId);
  if (plan.kind !== 'bad-request' && plan.delayMs > 0) await delay(plan.delayMs, undefined, { signal });
  const status = plan.kind === 'bad-request' ? 400 : plan.kind === 'fail-reset' ? 0 : plan.status;
  opts.log?.({
    msg: 'request',
    method: req.method,
    host: req.headers.host,
    path: url.pathname,
    peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
    status,
    requestId,
    ...(injected ? { injected: plan.kind, attempt: plan.attempt } : {}),
  });
  if (plan.kind === 'fail-reset') {
    req.socket.resetAndDestroy();
    return;
  }
  if (plan.kind === 'bad-request') {
    res.writeHead(400, { 'content-type': 'text/plain', 'x-pod': opts.podName }).end(`${plan.reason}\n`);
    return;
  }
  const reply: EchoReply = {
    pod: opts.podName,
    namespace: opts.namespace ?? null,
    method: req.method ?? '',
    host: req.headers.host ?? '',
    path: url.pathname,
    url: req.url ?? '/',
    query: Object.fromEntries(url.searchParams),
    headers: stringHeaders(req.headers),
    peer: { address: req.socket.remoteAddress ?? '', port: req.socket.remotePort ?? 0 },
    local: { address: req.socket.localAddress ?? '', port: req.socket.localPort ?? 0 },
    body,
  };
  res.writeHead(status, { 'content-type': 'application/json', 'x-pod': opts.podName });
  res.end(`${JSON.stringify(reply)}\n`);
}

function stringHeaders(h: IncomingMessage['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = v;
  return out;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let kept = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    if (kept < MAX_ECHO_BODY_BYTES) {
      chunks.push(buf.subarray(0, MAX_ECHO_BODY_BYTES - kept));
      kept += Math.min(buf.length, MAX_ECHO_BODY_BYTES - kept);
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}
