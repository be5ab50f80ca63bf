// Wires one ztunnel process together (ztunnel's app.rs): config source → store → certificates → HBONE
// listeners of local workloads (loopback mode) or in-pod listeners of enrolled pods (BPF redirector mode),
// outbound entries (SOCKS5, plaintext forwards), telemetry and process servers; and tears it down in drain
// order. Signals are installed by the CLI, not here, so tests can run
// several ztunnels in one process.

import net from 'node:net';
import { ProxyError } from '../errors.ts';
import { HboneClientPool } from '../hbone/pool.ts';
import { hostSocketFactory } from '../hbone/socket-factory.ts';
import type { ManagedCertificates } from '../identity/cert-manager.ts';
import { evaluateAuthz } from '../mesh/authz/evaluate.ts';
import type { MeshStore as MeshStoreType } from '../mesh/mesh-store.ts';
import { MeshStore } from '../mesh/mesh-store.ts';
import { workloadIdentity } from '../mesh/mesh-view.ts';
import { OutlierDetector } from '../mesh/outlier-detection.ts';
import { BpfRedirector } from '../redirect-bpf/loader.ts';
import { FERRY_VERSION } from '../runtime/build-info.ts';
import {
  ConnectionLimiter,
  DEFAULT_CONNECTION_LIMITS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
} from '../runtime/connection-limiter.ts';
import type { DrainOutcome } from '../runtime/drain.ts';
import { DrainController } from '../runtime/drain.ts';
import type { ListenAddress } from '../runtime/http-server.ts';
import type { Logger } from '../runtime/logger.ts';
import { createLogger, type LogDestination, parseLogLevel, type RootLogger } from '../runtime/logger.ts';
import { ConfigError } from '../runtime/process-config.ts';
import { type ProcessServers, startProcessServers } from '../runtime/process-servers.ts';
import { ReadinessTracker } from '../runtime/readiness.ts';
import type { XdsHeldState } from '../xds/client-state.ts';
import { AccessLog } from './access-log.ts';
import { ZTUNNEL_PORTS, type ZtunnelConfig } from './config.ts';
import type { ConfigFileSource, LoadOutcome } from './config-file-source.ts';
import { ConfigXdsSource } from './config-xds-source.ts';
import { ConnectionTracker } from './connections.ts';
import { type EnrolledPod, InPodManager, type PodEnrollRequest, type PodRedirector } from './in-pod.ts';
import { InPodError } from './in-pod-errors.ts';
import { servePlaintextInbound } from './inbound-passthrough.ts';
import { startListenerReclaim } from './listener-reclaim.ts';
import { ZtunnelMetrics } from './metrics.ts';
import { startSocks5 } from './outbound-entry.ts';
import type { OutboundL7Factory, OutboundL7Handler } from './outbound-l7.ts';
import { podRoutes } from './pods-api.ts';
import type { ProxyContext } from './proxy-context.ts';
import { registerRedirectMetrics } from './redirect-metrics.ts';
import { WorkloadListeners } from './workload-listeners.ts';

export interface ZtunnelDeps {
  readonly certificates: ManagedCertificates;
  /** Where JSON log lines go (default stdout). */
  readonly logDestination?: LogDestination;
  /**
   * In-pod mode with this redirector (tests inject one; the caller keeps ownership). Without it, config
   * `redirect: bpf` opens the pinned BPF redirector, which this ztunnel then closes (pins stay).
   */
  readonly redirector?: PodRedirector;
  /**
   * Sidecar mode (src/ztunnel/sidecar/): the uid of the one workload this ztunnel serves. Only its
   * identity gets a certificate, whatever else runs on the node.
   */
  readonly servedWorkload?: string;
  /** xDS Node.id when not the node proxy's (sidecar mode: `sidecar~…`, so it never counts as the node's). */
  readonly xdsNodeId?: string;
  /** Pods enrolled at start, before readiness (sidecar mode: its own pod). A failure fails the start. */
  readonly enrollOnStart?: readonly PodEnrollRequest[];
  /**
   * Sidecar L7 (outbound-l7.ts): captured connections to Service ports with HTTP routes go to this
   * handler; it gets the L7 xDS type too. Needs the xDS config source (a file has no routes).
   */
  readonly outboundL7?: OutboundL7Factory;
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
  /** In-pod mode: enrolls a pod of this node by its workload uid. Throws InPodError (FERRY_INPOD_*). */
  enrollPod(request: PodEnrollRequest): Promise<EnrolledPod>;
  /** Stops capturing a pod (its open connections continue); false when it was not enrolled. */
  unenrollPod(uid: string): Promise<boolean>;
  pods(): EnrolledPod[];
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
  const metrics = new ZtunnelMetrics({ buildTag: FERRY_VERSION });
  const accessLog = new AccessLog({ logger: log, metrics });
  const store = new MeshStore({
    onListenerError: (err) => log.error({ error: String(err) }, 'config listener failed'),
  });
  if (deps.outboundL7 !== undefined && config.configSource.kind === 'file')
    throw new ConfigError('sidecar L7 needs --xds-address: a config file carries no HTTPRoutes');
  const outboundL7 =
    deps.outboundL7?.({ logger: log.child({ scope: 'l7' }), hbonePort: config.hbonePort, network: config.network }) ??
    null;
  const source = await createConfigSource(config, store, log, deps.xdsNodeId, outboundL7);
  const certificates = deps.certificates;
  const pool = new HboneClientPool({ idleTimeoutMs: config.poolIdleTimeoutMs });
  const connections = new ConnectionTracker();
  let inPod: InPodManager | null = null;
  const ctx: ProxyContext = {
    node: config.node,
    network: config.network,
    store,
    certificates,
    pool,
    accessLog,
    connections,
    drain,
    logger: log,
    inboundSourceAddress: config.inboundSourceAddress,
    hboneAdmission: {
      limiter: new ConnectionLimiter(config.hboneConnectionLimits ?? DEFAULT_CONNECTION_LIMITS.hbone),
      handshakeTimeoutMs: config.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    },
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
    sockets: { forWorkload: (w) => inPod?.socketsFor(w) ?? hostSocketFactory },
    outliers: new OutlierDetector(),
    outboundL7,
  };
  const redirectMode = config.redirect ?? { kind: 'none' };
  const inPodMode = deps.redirector !== undefined || redirectMode.kind === 'bpf';
  // In-pod mode: pods' HBONE listeners live in their netns; nothing binds pod IPs on the host.
  const listeners = new WorkloadListeners(ctx, { hostListeners: !inPodMode });
  const cleanup: Array<() => Promise<void> | void> = [];
  try {
    if (inPodMode) {
      let redirector = deps.redirector;
      if (redirector === undefined && redirectMode.kind === 'bpf') {
        const opened = await BpfRedirector.open({ cgroupPath: redirectMode.cgroupRoot, pinRoot: redirectMode.pinRoot });
        cleanup.push(() => opened.close()); // releases our handles; the pinned datapath stays
        redirector = opened;
      }
      if (redirector !== undefined) {
        inPod = new InPodManager(ctx, {
          redirector,
          statePath: redirectMode.kind === 'bpf' ? redirectMode.statePath : null,
        });
        registerRedirectMetrics(metrics, redirector, () => inPod?.list().length ?? 0);
        if (config.enrollFrom?.kind === 'kubernetes' && redirectMode.kind === 'bpf') {
          const { exemptOwnPod } = await loadNodeAgent();
          exemptOwnPod({
            cgroupRoot: redirectMode.cgroupRoot,
            podUid: config.enrollFrom.podUid,
            guard: redirector,
            log,
          });
        }
      }
    }
    if (source instanceof ConfigXdsSource) cleanup.push(() => source.close());
    if (outboundL7 !== null) cleanup.push(() => outboundL7.close());
    // xDS: readiness waits for the first ACKed push of each type; a drain during the wait aborts it.
    const first = source instanceof ConfigXdsSource ? await source.load(drain.signal) : await source.load();
    if (!first.ok) {
      throw new ConfigError(`config from ${describeSource(config)} rejected:\n  ${first.errors.join('\n  ')}`);
    }
    configBlock.unblock();
    const rotation = certificates.onRotate((cert) => {
      listeners.updateCertificate(cert);
      inPod?.updateCertificate(cert);
    });
    cleanup.push(() => rotation[Symbol.dispose]());
    const applyView = async (): Promise<void> => {
      const view = store.view;
      const onNode = WorkloadListeners.localWorkloads(view, config.node);
      const local = deps.servedWorkload === undefined ? onNode : onNode.filter((w) => w.uid === deps.servedWorkload);
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
    // After a restart: serve the pods enrolled before, and unpin the ones that are gone.
    // Pods enrolled at start go first: re-enrolling over the pins a previous process left takes over in
    // place, and restore() then keeps them (an unpin in between would let their traffic go direct).
    for (const request of deps.enrollOnStart ?? []) {
      if (inPod === null) throw disabled();
      await untilWorkloadKnown(store, request.uid, drain.signal, log);
      await inPod.enroll(request);
    }
    // With the node agent, pinned pods stay captured until the API says which ones left (no plaintext gap).
    if (inPod !== null) await inPod.restore({ unpin: config.enrollFrom?.kind !== 'kubernetes' });
    if (inPod !== null && config.enrollFrom?.kind !== 'kubernetes') disarmGuard(inPod.redirector, log);
    listenersBlock.unblock();
    if (inPod !== null) {
      const reclaim = startListenerReclaim(inPod, drain.signal, log);
      cleanup.push(() => reclaim.stop());
    }
    // --enroll-from=kubernetes: from now on the API decides what is enrolled (restored pods stay meanwhile).
    if (inPod !== null && config.enrollFrom?.kind === 'kubernetes' && redirectMode.kind === 'bpf') {
      const pods = inPod;
      const { startNodeAgent } = await loadNodeAgent();
      const agent = startNodeAgent({
        node: config.node,
        clusterId: config.clusterId,
        enrollFrom: config.enrollFrom,
        cgroupRoot: redirectMode.cgroupRoot,
        target: {
          enroll: (r) => pods.enroll(r),
          unenroll: (uid) => pods.unenroll(uid),
          list: () => pods.list(),
          unpinStale: (keep) => pods.unpinStale(keep),
        },
        guard: pods.redirector,
        store,
        metrics,
        readiness,
        log,
        signal: drain.signal,
      });
      cleanup.push(() => agent.stop());
    }

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
      adminSocketPath: config.adminSocketPath,
      registry: metrics.registry,
      readiness,
      logger,
      drain,
      drainDeadlineMs: config.drainDeadlineMs,
      configDump: () => ({
        node: config.node,
        configSource: describeSource(config),
        xds: source instanceof ConfigXdsSource ? source.status() : null,
        ...store.view.dump(),
        certificates: certificates.snapshot(),
        listeners: listeners.status(),
        pool: pool.stats(),
        liveInboundConnections: connections.size,
        hboneConnections: ctx.hboneAdmission?.limiter.stats() ?? null,
        outliers: ctx.outliers.entries(Date.now()),
        pods: inPod?.list() ?? null,
      }),
      extraAdminRoutes: podRoutes({
        enrollPod: (req) => enrollPod(req),
        unenrollPod: (uid) => unenrollPod(uid),
        pods: () => inPod?.list() ?? [],
      }),
    });
    function enrollPod(req: unknown): Promise<EnrolledPod> {
      if (inPod === null) return Promise.reject(disabled());
      return inPod.enroll(req);
    }
    function unenrollPod(uid: string): Promise<boolean> {
      if (inPod === null) return Promise.reject(disabled());
      return inPod.unenroll(uid);
    }
    const stopped = drainSequence();
    async function drainSequence(): Promise<DrainOutcome> {
      if (!drain.signal.aborted) await new Promise((r) => drain.signal.addEventListener('abort', r, { once: true }));
      log.info({ deadlineMs: config.drainDeadlineMs }, 'draining');
      // Stop accepting first; then let tunnels finish until the deadline; then close what is left.
      await Promise.allSettled([socks5?.close(), ...forwards.map(closeServer)]);
      await Promise.allSettled([
        listeners.close(true, config.drainDeadlineMs),
        inPod?.close(true, config.drainDeadlineMs),
        pool.close(config.drainDeadlineMs),
      ]);
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
      enrollPod,
      unenrollPod,
      pods: () => inPod?.list() ?? [],
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
    await inPod?.close(false, 0);
    pool.destroy();
    certificates.close();
    throw err;
  }
}

/** Resolves once the config names the workload (a sidecar may start before its pod is published). */
async function untilWorkloadKnown(store: MeshStoreType, uid: string, signal: AbortSignal, log: Logger): Promise<void> {
  if (store.view.workloadByUid(uid) !== undefined) return;
  log.info({ uid }, 'waiting for the workload to appear in the config');
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      subscription[Symbol.dispose]();
      reject(signal.reason);
    };
    const subscription = store.onChange(() => {
      if (store.view.workloadByUid(uid) === undefined) return;
      subscription[Symbol.dispose]();
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The node agent (--enroll-from kubernetes) loads the Kubernetes client library (≈ 80 MiB of RSS, 870
 * modules): only a ztunnel that uses it pays for it (docs/performance.md, issue 12).
 */
function loadNodeAgent(): Promise<typeof import('./node-agent/start.ts')> {
  return import('./node-agent/start.ts');
}

function disabled(): InPodError {
  return new InPodError(
    'FERRY_INPOD_DISABLED',
    'this ztunnel runs without a redirector (start it with --redirect bpf)',
  );
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

/** The static file, or the controller over delta xDS (which then pushes changes; reload is a no-op). */
async function createConfigSource(
  config: ZtunnelConfig,
  store: MeshStoreType,
  log: Logger,
  nodeId: string | undefined,
  outboundL7: OutboundL7Handler | null,
): Promise<ConfigFileSource | ConfigXdsSource> {
  const c = config.configSource;
  if (c.kind === 'file') {
    // The static file's reader loads the YAML library (≈ 7 MiB): a ztunnel fed by xDS never needs it.
    const { ConfigFileSource } = await import('./config-file-source.ts');
    return new ConfigFileSource(c.path, store, log);
  }
  return new ConfigXdsSource(
    {
      address: c.address,
      rootPath: c.rootPath,
      ip: '127.0.0.1',
      node: config.node,
      clusterId: config.clusterId,
      ...(nodeId === undefined ? {} : { nodeId }),
      ...(outboundL7 === null ? {} : { onHeld: (held: XdsHeldState) => outboundL7.onConfig(held) }),
    },
    store,
    log,
  );
}

function describeSource(config: ZtunnelConfig): string {
  const c = config.configSource;
  return c.kind === 'file' ? c.path : `xds://${c.address}`;
}

/**
 * Admin-enrolled mode never guards: a guard root left pinned by a node agent on the same pin root (the
 * node switched modes) would refuse every pod nobody classifies any more.
 */
function disarmGuard(redirector: PodRedirector, log: Logger): void {
  if (redirector.guardRoot() === null) return;
  redirector.setGuardRoot(null);
  log.warn({}, 'fail-closed guard left by a node agent turned off (admin-enrolled mode)');
}
