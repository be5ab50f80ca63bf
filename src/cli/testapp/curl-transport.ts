// The test curl's ways of sending one request: HTTP/1.1 (a fresh connection each time, or a keep-alive
// agent shared by a load run), HTTP/2 with prior knowledge over cleartext (h2c: one session, many streams),
// and a WebSocket-style upgrade whose tunnel is written to and read back (the echo server echoes it).
// Every failure is a value (`kind: 'error'`), never a throw: tests count failures, they do not catch them.
import http, { type Agent, type IncomingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';

export interface SendRequest {
  readonly url: URL;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly data: string | undefined;
  readonly timeoutMs: number;
}

export type ResponseHeaders = Readonly<Record<string, string | readonly string[]>>;

export type SendResult =
  | { readonly kind: 'response'; readonly status: number; readonly headers: ResponseHeaders; readonly body: string }
  | { readonly kind: 'error'; readonly code: string; readonly message: string };

/** Sends requests one at a time per caller; `close` releases pooled connections. */
export interface Transport {
  send(req: SendRequest): Promise<SendResult>;
  close(): void;
}

export type TransportKind = 'http1' | 'http1-keepalive' | 'h2c' | 'ws';

export function createTransport(kind: TransportKind, origin: URL, concurrency: number): Transport {
  switch (kind) {
    case 'http1':
      return { send: (r) => sendHttp1(r, false), close: () => undefined };
    case 'http1-keepalive': {
      const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
      return { send: (r) => sendHttp1(r, agent), close: () => agent.destroy() };
    }
    case 'h2c':
      return new H2cTransport(origin);
    case 'ws':
      return { send: sendUpgrade, close: () => undefined };
  }
}

export function failure(err: unknown): SendResult {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = 'code' in e && typeof e.code === 'string' ? e.code : e.name;
  return { kind: 'error', code, message: e.message };
}

function plainHeaders(h: IncomingHttpHeaders): ResponseHeaders {
  const out: Record<string, string | readonly string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !k.startsWith(':')) out[k] = v;
  return out;
}

function sendHttp1(r: SendRequest, agent: Agent | false): Promise<SendResult> {
  return new Promise((resolve) => {
    const req = http.request(
      r.url,
      { method: r.method, headers: r.headers, signal: AbortSignal.timeout(r.timeoutMs), agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            kind: 'response',
            status: res.statusCode ?? 0,
            headers: plainHeaders(res.headers),
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', (err) => resolve(failure(err)));
      },
    );
    req.on('error', (err) => resolve(failure(err)));
    req.end(r.data);
  });
}

/** One h2c session, opened lazily and reopened after it dies; requests are its streams. */
class H2cTransport implements Transport {
  readonly #origin: URL;
  #session: http2.ClientHttp2Session | null = null;

  constructor(origin: URL) {
    this.#origin = origin;
  }

  #current(): http2.ClientHttp2Session {
    if (this.#session === null || this.#session.closed || this.#session.destroyed) {
      const session = http2.connect(this.#origin.origin);
      session.on('error', () => undefined); // surfaced per stream
      session.once('close', () => {
        if (this.#session === session) this.#session = null;
      });
      this.#session = session;
    }
    return this.#session;
  }

  send(r: SendRequest): Promise<SendResult> {
    return new Promise((resolve) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.#current().request(
          { ':method': r.method, ':path': `${r.url.pathname}${r.url.search}`, ...r.headers },
          { signal: AbortSignal.timeout(r.timeoutMs) },
        );
      } catch (err) {
        resolve(failure(err));
        return;
      }
      let status = 0;
      let headers: ResponseHeaders = {};
      const chunks: Buffer[] = [];
      stream.on('response', (h) => {
        status = Number(h[':status'] ?? 0);
        headers = plainHeaders(h as IncomingHttpHeaders);
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () =>
        resolve(
          status === 0
            ? { kind: 'error', code: 'ERR_HTTP2_STREAM_ERROR', message: `stream closed (rst code ${stream.rstCode})` }
            : { kind: 'response', status, headers, body: Buffer.concat(chunks).toString('utf8') },
        ),
      );
      stream.on('error', (err) => resolve(failure(err)));
      stream.end(r.data);
    });
  }

  close(): void {
    this.#session?.close();
    this.#session = null;
  }
}

/**
 * `Connection: Upgrade` + `Upgrade: websocket`; on 101 writes the data into the tunnel and resolves with
 * what came back (as many bytes as were sent), so a pass-through proxy shows as an echo.
 */
function sendUpgrade(r: SendRequest): Promise<SendResult> {
  return new Promise((resolve) => {
    const payload = Buffer.from(r.data ?? 'ping', 'utf8');
    const req = http.request(r.url, {
      method: 'GET',
      agent: false,
      signal: AbortSignal.timeout(r.timeoutMs),
      headers: {
        ...r.headers,
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    req.on('upgrade', (res, socket: Duplex, head: Buffer) => {
      const chunks: Buffer[] = head.length > 0 ? [head] : [];
      let size = head.length;
      const done = (result: SendResult) => {
        socket.destroy();
        resolve(result);
      };
      socket.on('data', (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (size >= payload.length) {
          const body = Buffer.concat(chunks).toString('utf8');
          done({ kind: 'response', status: res.statusCode ?? 101, headers: plainHeaders(res.headers), body });
        }
      });
      socket.on('error', (err) => done(failure(err)));
      socket.on('end', () => done({ kind: 'error', code: 'ECONNRESET', message: 'upgraded tunnel closed early' }));
      socket.write(payload);
    });
    req.on('response', (res) => {
      // Not upgraded: report the status (a proxy that refuses upgrades answers 4xx/5xx here).
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          kind: 'response',
          status: res.statusCode ?? 0,
          headers: plainHeaders(res.headers),
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.on('error', (err) => resolve(failure(err)));
    req.end();
  });
}
