// The small plain-HTTP server under the metrics, readiness and admin endpoints: a fixed route table
// (path → method → handler), 404 for unknown paths, 405 with `Allow` for known paths, 500 (logged) when
// a handler throws. start() resolves once listening (port 0 allowed); close() ends every connection,
// idle or not, and resolves when the server is fully closed. Not for proxied traffic.
// Changes (every method but GET and HEAD) are served only on the optional admin socket (a 0600 Unix
// socket, src/runtime/admin-socket.ts): on the TCP address they get 403, so a local user who can reach
// loopback can read but never change anything (docs/operations.md, "Admin endpoints").
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { listenAdminSocket } from './admin-socket.ts';
import { ConnectionLimiter, DEFAULT_CONNECTION_LIMITS, guardConnection } from './connection-limiter.ts';
import { RuntimeError } from './errors.ts';
import type { Logger } from './logger.ts';
import { silentLogger } from './logger.ts';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export type HttpMethod = 'GET' | 'POST' | 'HEAD' | 'DELETE';

/** What a handler returns; the server writes it. */
export interface HttpReply {
  readonly status: number;
  readonly body: string;
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface HttpRequestInfo {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: http.IncomingHttpHeaders;
  /** The request body (UTF-8), read only for routes that set maxBodyBytes. */
  readonly body?: string;
}

export type RouteHandler = (req: HttpRequestInfo) => HttpReply | Promise<HttpReply>;

export interface Route {
  readonly path: string;
  readonly methods: Partial<Readonly<Record<HttpMethod, RouteHandler>>>;
  /** One line for the admin index. */
  readonly description?: string;
  /** Runs after the reply was fully written (e.g. /quitquitquit starts the drain only then). */
  readonly afterReply?: (req: HttpRequestInfo) => void;
  /** Also serve every path below `path` (which then ends with '/'), e.g. `/pods/<uid>`. */
  readonly prefix?: boolean;
  /** Read the body up to this size into `body` (413 above it); without it bodies are discarded. */
  readonly maxBodyBytes?: number;
}

export interface HttpServerOptions {
  /** Used in error messages and logs: `metrics`, `readiness`, `admin`. */
  readonly name: string;
  readonly listen: ListenAddress;
  readonly routes: readonly Route[];
  readonly logger?: Logger;
  /** The admin socket: where changes (POST, DELETE) are accepted. Without it no change is accepted. */
  readonly socketPath?: string;
}

/** Methods that only read: served on TCP. Everything else is a change and needs the admin socket. */
const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

// Scrapers and probes reconnect every few seconds; a short idle timeout frees their sockets without
// making each request pay a new handshake. headersTimeout bounds slowloris-style clients: Node checks it
// every connectionsCheckingInterval, so a client that never finishes its headers is cut after 10-11 s.
// The TCP address also caps concurrent connections (64 per source IP, 256 in all).
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;
// No endpoint takes a body bigger than a query string; refuse large uploads early.
const MAX_HEADER_BYTES = 16 * 1024;

type ServerState = { phase: 'idle' } | { phase: 'listening'; address: ListenAddress } | { phase: 'closed' };

export class HttpServer {
  readonly #name: string;
  readonly #listen: ListenAddress;
  readonly #routes: ReadonlyMap<string, Route>;
  readonly #logger: Logger;
  readonly #server: http.Server;
  readonly #socketPath: string | null;
  readonly #socketServer: http.Server | null;
  #state: ServerState = { phase: 'idle' };

  constructor(opts: HttpServerOptions) {
    this.#name = opts.name;
    this.#listen = opts.listen;
    this.#routes = new Map(opts.routes.map((r) => [r.path, r]));
    this.#logger = opts.logger ?? silentLogger;
    this.#socketPath = opts.socketPath ?? null;
    this.#server = this.#createServer(false);
    this.#socketServer = this.#socketPath === null ? null : this.#createServer(true);
  }

  /** `viaSocket`: requests arrive on the admin socket and may change things. */
  #createServer(viaSocket: boolean): http.Server {
    const server = http.createServer({
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
      maxHeaderSize: MAX_HEADER_BYTES,
    });
    if (!viaSocket) {
      const limiter = new ConnectionLimiter(DEFAULT_CONNECTION_LIMITS.http);
      server.on('connection', (socket: Socket) => {
        guardConnection(socket, limiter);
      });
    }
    server.on('request', (req, res) => {
      this.#serve(req, res, viaSocket).catch((err: unknown) => {
        // #serve handles handler errors itself; reaching this is a bug in the writing code.
        this.#logger.error({ server: this.#name, err }, 'http reply failed');
        res.destroy();
      });
    });
    // Garbage on the socket (bad HTTP) or headers not finished in time: answer 400 and close, never crash.
    // Destroyed once the answer is flushed: a client that never reads or closes must not keep our fd.
    server.on('clientError', (_err, socket) => {
      if (socket.writable) {
        socket.once('finish', () => socket.destroy());
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      } else socket.destroy();
    });
    return server;
  }

  /** The admin socket path, or null when this server accepts no changes. */
  get socketPath(): string | null {
    return this.#socketPath;
  }

  get routes(): readonly Route[] {
    return [...this.#routes.values()];
  }

  /** The bound address (real port when listening on 0). Throws before start(). */
  get address(): ListenAddress {
    if (this.#state.phase !== 'listening') throw new Error(`${this.#name} server is not listening`);
    return this.#state.address;
  }

  /** `http://host:port` of the bound address (IPv6 in brackets). */
  get url(): string {
    const { host, port } = this.address;
    return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
  }

  /** Starts listening; resolves with the bound address. Fails with FERRY_RUNTIME_LISTEN_FAILED. */
  async start(): Promise<ListenAddress> {
    if (this.#state.phase !== 'idle') {
      throw new RuntimeError('FERRY_RUNTIME_ALREADY_STARTED', `${this.#name} server was already started`);
    }
    const { host, port } = this.#listen;
    this.#server.listen({ host, port });
    try {
      await once(this.#server, 'listening');
    } catch (err) {
      this.#state = { phase: 'closed' };
      throw new RuntimeError('FERRY_RUNTIME_LISTEN_FAILED', `${this.#name} server cannot listen on ${host}:${port}`, {
        cause: err,
      });
    }
    const bound = this.#server.address() as AddressInfo;
    const address = { host: bound.address, port: bound.port };
    if (this.#socketServer !== null && this.#socketPath !== null) {
      try {
        await listenAdminSocket(this.#socketServer, this.#socketPath);
      } catch (err) {
        this.#state = { phase: 'closed' };
        await new Promise<void>((resolve) => this.#server.close(() => resolve()));
        throw err;
      }
      this.#socketServer.on('error', (err) => this.#logger.error({ server: this.#name, err }, 'admin socket error'));
    }
    this.#state = { phase: 'listening', address };
    this.#server.on('error', (err) => this.#logger.error({ server: this.#name, err }, 'http server error'));
    return address;
  }

  /** Stops accepting and ends every open connection; resolves once closed. Idempotent. */
  async close(): Promise<void> {
    const wasListening = this.#state.phase === 'listening';
    this.#state = { phase: 'closed' };
    if (!wasListening) return;
    const servers = this.#socketServer === null ? [this.#server] : [this.#server, this.#socketServer];
    const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of servers) s.closeAllConnections();
    await Promise.all(closed); // closing a Unix socket server also removes its file
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #prefixRoute(path: string): Route | undefined {
    for (const r of this.#routes.values()) {
      if (r.prefix === true && path.startsWith(r.path) && path.length > r.path.length) return r;
    }
    return undefined;
  }

  async #serve(req: http.IncomingMessage, res: http.ServerResponse, viaSocket: boolean): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = this.#routes.get(url.pathname) ?? this.#prefixRoute(url.pathname);
    const asked = req.method ?? 'GET';
    const change = !READ_METHODS.has(asked) && route?.methods[asked as HttpMethod] !== undefined;
    if (change && !viaSocket) {
      // Refused before the body is read and before any handler runs.
      req.resume();
      this.#logger.warn({ server: this.#name, method: req.method, path: url.pathname }, 'admin change refused on TCP');
      return write(res, { status: 403, body: this.#refusal(), headers: { connection: 'close' } });
    }
    let body: string | undefined;
    if (route?.maxBodyBytes === undefined) {
      // Bodies are not read: drain them so keep-alive connections stay usable.
      req.resume();
    } else {
      body = await readBody(req, route.maxBodyBytes);
      if (body === undefined) return write(res, { status: 413, body: 'request body too large\n' });
    }
    const info: HttpRequestInfo = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      ...(body === undefined ? {} : { body }),
    };
    if (route === undefined) return write(res, { status: 404, body: `not found: ${url.pathname}\n` });
    const method = info.method === 'HEAD' && route.methods.HEAD === undefined ? 'GET' : info.method;
    const handler = route.methods[method as HttpMethod];
    if (handler === undefined) {
      const allow = Object.keys(route.methods).join(', ');
      return write(res, { status: 405, body: `method ${info.method} not allowed\n`, headers: { allow } });
    }
    let reply: HttpReply;
    try {
      reply = await handler(info);
    } catch (err) {
      this.#logger.error({ server: this.#name, path: url.pathname, err }, 'http handler failed');
      reply = { status: 500, body: 'internal error\n' };
    }
    if (route.afterReply !== undefined && reply.status < 300) {
      const after = route.afterReply;
      res.once('finish', () => after(info));
    }
    write(res, reply); // node:http sends no body for HEAD, but keeps the GET content-length
  }

  #refusal(): string {
    return this.#socketPath === null
      ? `${this.#name}: changes are not accepted over TCP; this process has no admin socket\n`
      : `${this.#name}: changes are accepted only on the admin socket (root only): ${this.#socketPath}\n`;
  }
}

/** The body as UTF-8, or undefined once it exceeds maxBytes (the rest is drained). */
function readBody(req: http.IncomingMessage, maxBytes: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(size > maxBytes ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.once('error', () => resolve(undefined));
  });
}

function write(res: http.ServerResponse, reply: HttpReply): void {
  const headers: Record<string, string | number> = {
    'content-type': reply.contentType ?? 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(reply.body),
    ...reply.headers,
  };
  res.writeHead(reply.status, headers);
  res.end(reply.body);
}
