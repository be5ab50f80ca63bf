// The admin server on 127.0.0.1:15000 (docs/architecture.md "Processes and ports", docs/architecture.md "Telemetry"): `/` lists the
// endpoints, `/config_dump` (JSON from the process's provider), `/logging` (GET level; POST ?level=…),
// `/quitquitquit` (POST: graceful drain). Reads are served on the loopback TCP address; changes (POST)
// only on the admin socket, a 0600 Unix socket that only root can connect to (src/runtime/http-server.ts,
// docs/operations.md "Admin endpoints"). State-changing requests from a browser page (they carry `Origin`)
// are refused as well. /config_dump passes through redactSecrets: no key, token or PEM key block leaves.
import { type HttpReply, type HttpRequestInfo, HttpServer, type ListenAddress, type Route } from './http-server.ts';
import { isLogLevel, LOG_LEVELS, type Logger, type LogLevel } from './logger.ts';
import { redactSecrets } from './redact.ts';

/** Reads and changes the process log level (the RootLogger fits). */
export interface LogLevelControl {
  readonly level: LogLevel;
  setLevel(level: LogLevel): void;
}

export interface AdminServerOptions {
  /** Istio: 127.0.0.1:15000. */
  readonly listen: ListenAddress;
  /** The admin socket (0600) where POSTs are accepted; without it the admin server accepts no change. */
  readonly socketPath?: string;
  /** Snapshot for /config_dump; must not contain private keys. May be async. */
  readonly configDump: () => unknown;
  /** Called once the /quitquitquit reply was written: start a graceful drain. */
  readonly onQuit: () => void;
  readonly logLevel: LogLevelControl;
  /** Extra endpoints of the process (e.g. `/debug/...`), listed on `/`. */
  readonly extraRoutes?: readonly Route[];
  readonly logger?: Logger;
}

const json = (status: number, value: unknown): HttpReply => ({
  status,
  body: `${JSON.stringify(value, null, 2)}\n`,
  contentType: 'application/json',
});

// Browsers send Origin on cross-origin POSTs; curl, kubectl and our CLI do not.
function fromBrowser(req: HttpRequestInfo): boolean {
  return req.headers.origin !== undefined;
}

const FORBIDDEN: HttpReply = { status: 403, body: 'admin changes are not accepted from browsers\n' };

/** The 15000 server. Call start() to listen. */
export function createAdminServer(opts: AdminServerOptions): HttpServer {
  const { logLevel } = opts;
  const routes: Route[] = [
    {
      path: '/config_dump',
      description: 'current configuration (JSON)',
      methods: { GET: async () => json(200, redactSecrets(await opts.configDump())) },
    },
    {
      path: '/logging',
      description: 'GET: current log level; POST ?level=<level>: change it',
      methods: {
        GET: () => json(200, { level: logLevel.level, levels: LOG_LEVELS }),
        POST: (req) => {
          if (fromBrowser(req)) return FORBIDDEN;
          const wanted = req.query.get('level');
          if (wanted === null || !isLogLevel(wanted.toLowerCase())) {
            return json(400, { error: `expected ?level=<${LOG_LEVELS.join('|')}>`, level: logLevel.level });
          }
          const from = logLevel.level;
          logLevel.setLevel(wanted.toLowerCase() as LogLevel);
          // Not `level`: that key is the line's own level.
          opts.logger?.info({ from, to: logLevel.level }, 'log level changed');
          return json(200, { level: logLevel.level });
        },
      },
    },
    {
      path: '/quitquitquit',
      description: 'POST: drain gracefully and exit',
      methods: { POST: (req) => (fromBrowser(req) ? FORBIDDEN : { status: 200, body: 'OK\n' }) },
      // After the reply is written: the drain closes this server, and the caller should still get its 200.
      afterReply: () => opts.onQuit(),
    },
    ...(opts.extraRoutes ?? []),
  ];
  const index: Route = {
    path: '/',
    description: 'this list',
    methods: {
      GET: () => ({
        status: 200,
        body: `${[index, ...routes].map((r) => `${r.path}: ${r.description ?? ''}`).join('\n')}\n`,
      }),
    },
  };
  return new HttpServer({
    name: 'admin',
    listen: opts.listen,
    ...(opts.socketPath === undefined ? {} : { socketPath: opts.socketPath }),
    routes: [index, ...routes],
    ...(opts.logger === undefined ? {} : { logger: opts.logger }),
  });
}
