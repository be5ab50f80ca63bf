// Wires the three standard endpoints of a long-running Ferry process (docs/architecture.md "Processes and ports"): metrics (15020),
// readiness (15021), admin (127.0.0.1:15000). Starts all or none: if one cannot bind, the ones already
// started are closed before the error propagates. Once the drain starts, readiness reports not ready
// (so load balancers and the kubelet stop sending new work); /quitquitquit triggers the drain.
import type { AdminServerOptions } from './admin.ts';
import { createAdminServer } from './admin.ts';
import type { DrainController } from './drain.ts';
import type { HttpServer, ListenAddress, Route } from './http-server.ts';
import type { RootLogger } from './logger.ts';
import { createMetricsServer, type MetricsSource } from './metrics-server.ts';
import { createReadinessServer, type ReadinessTracker } from './readiness.ts';

export interface ProcessServersOptions {
  readonly metricsAddress: ListenAddress;
  readonly readinessAddress: ListenAddress;
  readonly adminAddress: ListenAddress;
  /** The admin socket (0600) for POST/DELETE endpoints; null: the admin server accepts no change. */
  readonly adminSocketPath?: string | null;
  readonly registry: MetricsSource;
  readonly readiness: ReadinessTracker;
  readonly logger: RootLogger;
  readonly drain: DrainController;
  /** Deadline of the drain /quitquitquit starts. */
  readonly drainDeadlineMs: number;
  readonly configDump: AdminServerOptions['configDump'];
  readonly extraAdminRoutes?: readonly Route[];
}

export interface ProcessServers extends AsyncDisposable {
  readonly metrics: HttpServer;
  readonly readiness: HttpServer;
  readonly admin: HttpServer;
  /** Closes all three (idempotent). */
  close(): Promise<void>;
}

/** Starts metrics, readiness and admin servers; resolves once all three listen. */
export async function startProcessServers(opts: ProcessServersOptions): Promise<ProcessServers> {
  const { logger, drain } = opts;
  const metrics = createMetricsServer({
    listen: opts.metricsAddress,
    registry: opts.registry,
    logger: logger.child({ server: 'metrics' }),
  });
  const readiness = createReadinessServer({
    listen: opts.readinessAddress,
    tracker: opts.readiness,
    logger: logger.child({ server: 'readiness' }),
  });
  const admin = createAdminServer({
    listen: opts.adminAddress,
    ...(opts.adminSocketPath === undefined || opts.adminSocketPath === null
      ? {}
      : { socketPath: opts.adminSocketPath }),
    configDump: opts.configDump,
    logLevel: logger,
    logger: logger.child({ server: 'admin' }),
    onQuit: () => {
      logger.info({ deadlineMs: opts.drainDeadlineMs }, 'quitquitquit: draining');
      void drain.trigger({ deadlineMs: opts.drainDeadlineMs });
    },
    ...(opts.extraAdminRoutes === undefined ? {} : { extraRoutes: opts.extraAdminRoutes }),
  });
  const servers = [metrics, readiness, admin];
  const closeAll = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.close()));
  };
  const results = await Promise.allSettled(servers.map((s) => s.start()));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure !== undefined) {
    await closeAll();
    throw failure.reason;
  }
  // Never unblocked: a drain does not end, the process exits after it.
  const onDrain = (): void => {
    opts.readiness.block('draining');
  };
  if (drain.signal.aborted) onDrain();
  else drain.signal.addEventListener('abort', onDrain, { once: true });
  const close = async (): Promise<void> => {
    drain.signal.removeEventListener('abort', onDrain);
    await closeAll();
  };
  return { metrics, readiness, admin, close, [Symbol.asyncDispose]: close };
}
