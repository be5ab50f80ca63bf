// Wires one waypoint process (docs/architecture.md "Processes and ports", "How a connection flows through the code" step 6): config source → compiled state (rebuilt on every
// change, read per request) → its SVID → the HBONE listener (in the waypoint pod's netns when --netns is
// given) → request pipeline → upstream HTTP over pooled HBONE; metrics, access log, admin and readiness;
// and a drain that stops accepting, lets requests in flight finish until the deadline, then closes.

import { HboneClientPool } from '../hbone/pool.ts';
import type { SocketFactory } from '../hbone/socket-factory.ts';
import { hostSocketFactory, podNetnsSocketFactory } from '../hbone/socket-factory.ts';
import type { ManagedCertificates } from '../identity/cert-manager.ts';
import { formatSpiffeId, type SpiffeId } from '../identity/spiffe-id.ts';
import { closeFd, createListenerFd, inNetns, openNetns } from '../redirect-bpf/netns.ts';
import { DrainController, type DrainOutcome } from '../runtime/drain.ts';
import type { ListenAddress } from '../runtime/http-server.ts';
import { createLogger, type LogDestination, parseLogLevel, type RootLogger } from '../runtime/logger.ts';
import { startProcessServers } from '../runtime/process-servers.ts';
import { ReadinessTracker } from '../runtime/readiness.ts';
import type { WaypointProcessConfig } from './config.ts';
import type { WaypointConfig, WaypointConfigSource } from './config-types.ts';
import { WaypointIngress } from './ingress.ts';
import { WaypointMetrics } from './metrics.ts';
import { RequestPipeline } from './pipeline.ts';
import { buildWaypointState, type WaypointState } from './state.ts';
import { UpstreamClient } from './upstream/client.ts';

export interface WaypointDeps {
  readonly certificates: ManagedCertificates;
  readonly logDestination?: LogDestination;
  /** A config source built by the caller (xDS); otherwise --config is read from file. */
  readonly source?: WaypointConfigSource;
}

export interface Waypoint {
  readonly logger: RootLogger;
  readonly metrics: WaypointMetrics;
  readonly drain: DrainController;
  readonly addresses: {
    readonly hbone: { readonly ip: string; readonly port: number };
    readonly admin: ListenAddress;
    readonly metrics: ListenAddress;
    readonly readiness: ListenAddress;
  };
  state(): WaypointState;
  /** Re-reads a file config (SIGHUP); a bad file leaves the running config. */
  reload(): Promise<void>;
  shutdown(deadlineMs?: number): Promise<DrainOutcome>;
  readonly stopped: Promise<DrainOutcome>;
}

export async function startWaypoint(config: WaypointProcessConfig, deps: WaypointDeps): Promise<Waypoint> {
  const logger = createLogger({
    component: 'waypoint',
    level: parseLogLevel(config.logLevel),
    ...(deps.logDestination === undefined ? { batchMs: 100 } : { destination: deps.logDestination }),
  });
  const log = logger.child({ waypoint: `${config.waypoint.namespace}/${config.waypoint.name}` });
  const readiness = new ReadinessTracker();
  const configBlock = readiness.block('config');
  const drain = new DrainController();
  const metrics = new WaypointMetrics();
  const identity: SpiffeId = {
    trustDomain: config.trustDomain,
    namespace: config.waypoint.namespace,
    serviceAccount: config.serviceAccount,
  };
  const certificates = deps.certificates;
  certificates.setLocalIdentities([identity]);
  // The static file's reader loads the YAML library (≈ 7 MiB): a waypoint fed by xDS never needs it.
  const fileSource =
    deps.source === undefined && config.source.kind === 'file'
      ? new (await import('./config-file-source.ts')).WaypointFileSource(config.source.path)
      : null;
  const source: WaypointConfigSource | null = deps.source ?? fileSource;
  if (source === null) throw new Error('startWaypoint: an xDS source must be passed in deps.source');
  const cleanup: Array<() => Promise<void> | void> = [() => source.close()];
  let netnsSockets: (SocketFactory & { close(): void }) | null = null;
  try {
    let version = 0;
    let state = buildWaypointState(source.current(), config.waypoint, config, version);
    const reported = new Set<string>();
    const apply = (c: WaypointConfig): void => {
      state = buildWaypointState(c, config.waypoint, config, ++version);
      for (const p of state.problems) {
        const id = `${p.object}|${p.field}|${p.message}`;
        if (reported.has(id)) continue;
        reported.add(id);
        log.warn({ code: p.code, object: p.object, field: p.field }, p.message);
      }
      log.info({ version, routes: state.routes.routes.length, policies: state.policies.length }, 'config applied');
    };
    const unsubscribe = source.onChange(apply);
    cleanup.push(unsubscribe);
    if (fileSource !== null) await fileSource.load();
    await source.whenSynced();
    apply(source.current());
    configBlock.unblock();

    const cert = await certificates.getCertificate(identity);
    let sockets: SocketFactory = hostSocketFactory;
    let listen: { host: string; port: number } | { fd: number } = {
      host: config.listen.host,
      port: config.listen.port,
    };
    if (config.netns !== null) {
      const nsFd = openNetns(config.netns);
      netnsSockets = podNetnsSocketFactory(nsFd);
      sockets = netnsSockets;
      const listenFd = inNetns(nsFd, () =>
        createListenerFd({ address: config.listen.host, port: config.listen.port, reusePort: true }),
      );
      listen = { fd: listenFd };
    }
    const pool = new HboneClientPool({});
    const getCert = () => certificates.getCertificate(identity);
    const client = new UpstreamClient({ pool, certificate: getCert, sockets, http1: config.http1Client ?? 'undici' });
    const pipeline = new RequestPipeline({
      state: () => state,
      client,
      metrics,
      log,
      hbonePort: config.hbonePort,
      accessLog: config.accessLog === true,
    });
    const ingress = await WaypointIngress.start({
      listen,
      certificate: cert,
      state: () => state,
      pipeline,
      log,
      tcp: { pool, certificate: getCert, sockets, hbonePort: config.hbonePort, client },
    }).catch((err: unknown) => {
      if ('fd' in listen) closeFd(listen.fd);
      throw err;
    });
    const rotation = certificates.onRotate((c) => {
      if (formatSpiffeId(c.identity) === formatSpiffeId(identity)) ingress.setCertificate(c);
    });
    cleanup.push(() => rotation[Symbol.dispose]());

    const servers = await startProcessServers({
      metricsAddress: config.metricsAddress,
      readinessAddress: config.readinessAddress,
      adminAddress: config.adminAddress,
      adminSocketPath: config.adminSocketPath,
      registry: metrics.registry,
      readiness,
      logger,
      drain,
      drainDeadlineMs: config.drainDeadlineMs,
      configDump: () => ({
        waypoint: config.waypoint,
        identity: formatSpiffeId(identity),
        version,
        routes: state.routes.routes,
        routeStatus: state.statuses,
        policies: state.policies,
        problems: state.problems,
        mesh: state.view.dump(),
        pool: pool.stats(),
        certificates: certificates.snapshot(),
      }),
    });
    const stopped = (async (): Promise<DrainOutcome> => {
      if (!drain.signal.aborted) await new Promise((r) => drain.signal.addEventListener('abort', r, { once: true }));
      log.info({ deadlineMs: config.drainDeadlineMs }, 'draining');
      await ingress.close(true, config.drainDeadlineMs);
      const outcome = await drain.drained;
      client.close();
      await pool.close(0).catch(() => {});
      pool.destroy();
      for (const c of cleanup.reverse()) await c();
      netnsSockets?.close();
      certificates.close();
      await servers.close();
      log.info({ forced: outcome.forced }, 'stopped');
      logger.flush();
      return outcome;
    })();
    log.info(
      { hbone: ingress.address, admin: servers.admin.address, metrics: servers.metrics.address },
      'waypoint ready',
    );
    return {
      logger,
      metrics,
      drain,
      addresses: {
        hbone: ingress.address,
        admin: servers.admin.address,
        metrics: servers.metrics.address,
        readiness: servers.readiness.address,
      },
      state: () => state,
      async reload() {
        if (fileSource === null) return;
        try {
          await fileSource.load();
        } catch (err) {
          log.error({ code: (err as { code?: string }).code, error: (err as Error).message }, 'config reload rejected');
        }
      },
      shutdown: (deadlineMs = config.drainDeadlineMs) => {
        void drain.trigger({ deadlineMs });
        return stopped;
      },
      stopped,
    };
  } catch (err) {
    for (const c of cleanup.reverse()) await c();
    netnsSockets?.close();
    certificates.close();
    throw err;
  }
}
