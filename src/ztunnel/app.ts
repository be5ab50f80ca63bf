// Wires one ztunnel process together (ztunnel's app.rs): config source → store → certificates → HBONE
// listeners of local workloads, outbound entries (SOCKS5, plaintext forwards), telemetry and process
// servers; and tears it down in drain order. Signals are installed by the CLI, not here, so tests can run
// several ztunnels in one process.
import net from 'node:net';
import type { SpiffeId } from '../identity/spiffe-id.ts';
import type { WorkloadCertificate } from '../identity/workload-certificate.ts';
import type { DrainOutcome } from '../runtime/drain.ts';
import { DrainController } from '../runtime/drain.ts';
import type { ListenAddress } from '../runtime/http-server.ts';
import { createLogger, type LogDestination, parseLogLevel, type RootLogger } from '../runtime/logger.ts';
import { type ProcessServers, startProcessServers } from '../runtime/process-servers.ts';
import { ReadinessTracker } from '../runtime/readiness.ts';
import type { ConnectionResult } from './access-log.ts';
import { AccessLog } from './access-log.ts';
import { evaluateAuthz } from './authz/evaluate.ts';
import { ConfigError, ZTUNNEL_PORTS, type ZtunnelConfig } from './config.ts';
import { ConfigFileSource, type LoadOutcome } from './config-file-source.ts';
import { ConnectionTracker } from './connections.ts';
import { ProxyError } from './errors.ts';
import { HboneClientPool } from './hbone/pool.ts';
import { servePlaintextInbound } from './inbound-passthrough.ts';
import { ZtunnelMetrics } from './metrics.ts';
import { openOutbound, resolveSourceWorkload } from './outbound.ts';
import type { CertificateProvider, ProxyContext } from './proxy-context.ts';
import type { Socks5ConnectRequest } from './socks5.ts';
import { SOCKS5_REP, Socks5Server, socks5RepForError } from './socks5.ts';
import { MeshStore } from './store/mesh-store.ts';
import { workloadIdentity } from './store/mesh-view.ts';
import { WorkloadListeners } from './workload-listeners.ts';

/** What the ztunnel needs from its certificate manager (src/identity/cert-manager.ts). */
export interface ManagedCertificates extends CertificateProvider {
  /** Identities of local workloads: prefetch them, forget the rest. */
  setLocalIdentities(ids: readonly SpiffeId[]): void;
  /** Called with each rotated certificate. */
  onRotate(listener: (cert: WorkloadCertificate) => void): Disposable;
  snapshot(): unknown;
  close(): void;
}

export interface ZtunnelDeps {
  readonly certificates: ManagedCertificates;
  /** Where JSON log lines go (default stdout). */
  readonly logDestination?: LogDestination;
}

export interface Ztunnel {
  readonly logger: RootLogger;
  readonly store: MeshStore;
  readonly metrics: ZtunnelMetrics;
  readonly pool: HboneClientPool;
  readonly drain: DrainController;
  readonly addresses: {
    readonly admin: ListenAddress;
    readonly metrics: ListenAddress;
    readonly readiness: ListenAddress;
    readonly socks5: ListenAddress | null;
    readonly plaintextInbound: readonly ListenAddress[];
  };
  /** Re-reads the config file (SIGHUP). */
  reload(): Promise<LoadOutcome>;
  /** Graceful drain with the configured deadline (or the one given); resolves when everything is closed. */
  shutdown(deadlineMs?: number): Promise<DrainOutcome>;
  /** Resolves once the process is fully stopped (after a drain from any trigger). */
  readonly stopped: Promise<DrainOutcome>;
}

const UPSTREAM_CONNECT_TIMEOUT_MS = 10_000;

export async function startZtunnel(config: ZtunnelConfig, deps: ZtunnelDeps): Promise<Ztunnel> {
  const logger = createLogger({
    component: 'ztunnel',
    level: parseLogLevel(config.logLevel),
    ...(deps.logDestination === undefined ? {} : { destination: deps.logDestination }),
  });
  const log = logger.child({ node: config.node });
  const readiness = new ReadinessTracker();
  const configBlock = readiness.block('config');
  const listenersBlock = readiness.block('workload listeners');
  const drain = new DrainController();
  const metrics = new ZtunnelMetrics({ buildTag: process.env.npm_package_version ?? '0.1.0' });
  const accessLog = new AccessLog({ logger: log, metrics });
  const store = new MeshStore({
    onListenerError: (err) => log.error({ error: String(err) }, 'config listener failed'),
  });
  const source = new ConfigFileSource(config.configPath, store, log);
  const certificates = deps.certificates;
  const pool = new HboneClientPool({ idleTimeoutMs: config.poolIdleTimeoutMs });
  const connections = new ConnectionTracker();
  const ctx: ProxyContext = {
    node: config.node,
    network: '',
    store,
    certificates,
    pool,
    accessLog,
    connections,
    drain,
    logger: log,
    inboundSourceAddress: config.inboundSourceAddress,
    selfPorts: new Set([
      ZTUNNEL_PORTS.outbound,
      ZTUNNEL_PORTS.inboundPlaintext,
      ZTUNNEL_PORTS.hbone,
      ZTUNNEL_PORTS.socks5,
      config.hbonePort,
    ]),
    hbonePort: config.hbonePort,
    upstreamConnectTimeoutMs: UPSTREAM_CONNECT_TIMEOUT_MS,
    drainDeadlineMs: config.drainDeadlineMs,
  };
  const listeners = new WorkloadListeners(ctx);
  const cleanup: Array<() => Promise<void> | void> = [];
  try {
    const first = await source.load();
    if (!first.ok) {
      throw new ConfigError(`config ${config.configPath} rejected:\n  ${first.errors.join('\n  ')}`);
    }
    configBlock.unblock();
    const rotation = certificates.onRotate((cert) => listeners.updateCertificate(cert));
    cleanup.push(() => rotation[Symbol.dispose]());
    const applyView = async (): Promise<void> => {
      const view = store.view;
      const local = WorkloadListeners.localWorkloads(view, config.node);
      certificates.setLocalIdentities(local.map(workloadIdentity));
      const closed = connections.recheck(view, evaluateAuthz);
      if (closed > 0) log.info({ closed }, 'closed connections denied by the new policy');
      await listeners.reconcile(view);
    };
    const subscription = store.onChange(() => {
      void applyView();
    });
    cleanup.push(() => subscription[Symbol.dispose]());
    await applyView();
    listenersBlock.unblock();

    const socks5 = config.socks5Address === null ? null : await startSocks5(ctx, config.socks5Address);
    if (socks5 !== null) cleanup.push(() => socks5.close());
    const forwards: net.Server[] = [];
    cleanup.push(() => Promise.all(forwards.map(closeServer)).then(() => {}));
    for (const f of config.plaintextInbound) {
      forwards.push(
        await listenPlaintext(ctx, f.listen.host, f.listen.port, {
          ip: f.originalDestination.host,
          port: f.originalDestination.port,
        }),
      );
    }
    const servers: ProcessServers = await startProcessServers({
      metricsAddress: config.metricsAddress,
      readinessAddress: config.readinessAddress,
      adminAddress: config.adminAddress,
      registry: metrics.registry,
      readiness,
      logger,
      drain,
      drainDeadlineMs: config.drainDeadlineMs,
      configDump: () => ({
        node: config.node,
        configFile: config.configPath,
        ...store.view.dump(),
        certificates: certificates.snapshot(),
        listeners: listeners.status(),
        pool: pool.stats(),
        liveInboundConnections: connections.size,
      }),
    });
    const stopped = drainSequence();
    async function drainSequence(): Promise<DrainOutcome> {
      if (!drain.signal.aborted) await new Promise((r) => drain.signal.addEventListener('abort', r, { once: true }));
      log.info({ deadlineMs: config.drainDeadlineMs }, 'draining');
      // Stop accepting first; then let tunnels finish until the deadline; then close what is left.
      await Promise.allSettled([socks5?.close(), ...forwards.map(closeServer)]);
      await Promise.allSettled([listeners.close(true, config.drainDeadlineMs), pool.close(config.drainDeadlineMs)]);
      const outcome = await drain.drained;
      connections.abortAll(new ProxyError('FERRY_DRAINING', 'ztunnel stopped'));
      pool.destroy();
      for (const c of cleanup.reverse()) await c();
      certificates.close();
      await servers.close();
      log.info({ forced: outcome.forced, remaining: outcome.remaining }, 'stopped');
      logger.flush();
      return outcome;
    }
    log.info(
      {
        admin: servers.admin.address,
        metrics: servers.metrics.address,
        socks5: socks5?.address ?? null,
        listeners: listeners.status().map((l) => l.address),
      },
      'ztunnel ready',
    );
    return {
      logger,
      store,
      metrics,
      pool,
      drain,
      addresses: {
        admin: servers.admin.address,
        metrics: servers.metrics.address,
        readiness: servers.readiness.address,
        socks5: socks5 === null ? null : { host: socks5.address.ip, port: socks5.address.port },
        plaintextInbound: forwards.map((s) => {
          const a = s.address() as net.AddressInfo;
          return { host: a.address, port: a.port };
        }),
      },
      reload: () => source.load(),
      shutdown: (deadlineMs = config.drainDeadlineMs) => {
        void drain.trigger({ deadlineMs });
        return stopped;
      },
      stopped,
    };
  } catch (err) {
    for (const c of cleanup.reverse()) await c();
    await listeners.close(false, 0);
    pool.destroy();
    certificates.close();
    throw err;
  }
}

async function startSocks5(ctx: ProxyContext, address: { host: string; port: number }) {
  const results = new WeakMap<Socks5ConnectRequest, ConnectionResult>();
  const server = await Socks5Server.listen({
    host: address.host,
    port: address.port,
    onConnect: async (req) => {
      const source = resolveSourceWorkload(ctx, req.srcIp);
      if (source === undefined) {
        ctx.logger.warn({ code: 'FERRY_UNKNOWN_SOURCE', src: req.srcIp }, 'SOCKS5 client is no local workload');
        return { ok: false, rep: SOCKS5_REP.notAllowed };
      }
      const opened = await openOutbound(ctx, source, {
        src: { ip: req.srcIp, port: req.clientSocket.remotePort ?? 0 },
        dst: req.dst,
        signal: req.signal,
      });
      if (!opened.ok) {
        opened.result.fail(opened.error);
        return { ok: false, rep: socks5RepForError(opened.error) };
      }
      results.set(req, opened.result);
      return { ok: true, upstream: opened.upstream };
    },
    onClosed: (req, spliced) => {
      const result = results.get(req);
      if (result === undefined) return;
      // The client socket is spliced: what it sent went to the destination.
      const totals = { bytesSent: spliced.bytesSent, bytesReceived: spliced.bytesReceived };
      if (spliced.error === undefined) result.finish(totals);
      else
        result.fail(
          new ProxyError('FERRY_UPSTREAM_CONNECT_FAILED', spliced.error.message, { cause: spliced.error }),
          {},
          totals,
        );
    },
    onClientError: (error, srcIp) =>
      ctx.logger.warn({ code: error.code, src: srcIp, error: error.message }, 'SOCKS5 client refused'),
  });
  return server;
}

function listenPlaintext(
  ctx: ProxyContext,
  host: string,
  port: number,
  originalDst: { ip: string; port: number },
): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      void servePlaintextInbound(ctx, socket, originalDst);
    });
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      server.on('error', (err) => ctx.logger.error({ error: err.message }, 'plaintext listener error'));
      resolve(server);
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
