// The controller on a Kubernetes API (`ferry controller --kubeconfig`, docs/architecture.md
// "Kubernetes source"): KubernetesSource → placement from the API (kubernetes-placement.ts) → translation →
// delta xDS to every ztunnel and waypoint, the node-bound CA (static node tokens, or TokenReview of projected
// ServiceAccount tokens: ca-token-review.ts), and Gateway API status written by the replica
// holding the Lease, which also publishes the trust bundle ConfigMaps and the waypoint Deployments
// (leader-writes.ts). Every replica serves xDS (TLS, a certificate from this CA) and the CA; xDS answers
// only from the first complete publish (never an empty snapshot to a reconnecting ztunnel). The CA root
// comes from a plug-in directory, the shared `--ca-secret` Secret, or is generated (per replica). Nothing
// here knows the local cluster's files.

import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { CertificateAuthority } from '../identity/ca.ts';
import { type CaAuthorizer, firstAuthenticating, nodeBoundAuthorizer } from '../identity/ca-authz.ts';
import { type CaServer, startCaServer } from '../identity/ca-server.ts';
import type { SpiffeId } from '../identity/spiffe-id.ts';
import { KubeClient, type KubeConfigChoice, loadKubeConfig } from '../kube/client.ts';
import type { Logger } from '../runtime/logger.ts';
import type { ReadinessTracker } from '../runtime/readiness.ts';
import { loadOrCreateCaSecret } from './ca-secret.ts';
import { tokenReviewAuthorizer } from './ca-token-review.ts';
import { MeshController } from './controller.ts';
import { kubeTokenReviewApi } from './kube-token-review.ts';
import { kubernetesPlacement } from './kubernetes-placement.ts';
import { LeaderWrites } from './leader-writes.ts';
import { RootCertPublisher } from './root-cert-configmaps.ts';
import { KubernetesSource } from './sources/kubernetes-source.ts';
import type { ClusterState, Diagnostic } from './sources/types.ts';
import { desiredStatuses } from './status/desired-status.ts';
import { LeaderElector } from './status/leader-election.ts';
import { StatusWriter } from './status/status-writer.ts';
import type { TranslateResult } from './translate/types.ts';
import { WaypointDeployer } from './waypoint-deployer.ts';
import type { WaypointTemplate } from './waypoint-template.ts';
import { startXdsServer, type XdsServer } from './xds-server.ts';

export interface KubernetesControllerOptions {
  /** Where the kubeconfig comes from (or pass `client`). */
  readonly kube?: KubeConfigChoice;
  readonly client?: KubeClient;
  readonly log: Logger;
  readonly trustDomain?: string;
  /** Service hostnames are `<svc>.<ns>.svc.<clusterDomain>` (default cluster.local). */
  readonly clusterDomain?: string;
  /** The controller's namespace ($POD_NAMESPACE): the CA Secret and a trust-bundle ConfigMap live there. */
  readonly namespace?: string;
  /** DNS SANs of the xDS and CA serving certificates (what ztunnels and waypoints dial); `localhost` always. */
  readonly tlsDnsNames?: readonly string[];
  /** IP SANs of those certificates, for clients that dial an address (a local cluster's pods: the gateway). */
  readonly tlsIpAddresses?: readonly string[];
  /** xDS is served over TLS with a certificate from this controller's CA. */
  readonly xds?: { readonly host?: string; readonly port?: number };
  readonly ca?: {
    readonly host?: string;
    readonly port?: number;
    /** Istio's cacerts layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem): shared by replicas. */
    readonly dir?: string | null;
    /** Without `dir`: the Secret (in `namespace`) holding the root all replicas share, created if missing. */
    readonly secretName?: string | null;
    /** Bearer token → node name of each node agent (static tokens; tried before `tokenReview`). */
    readonly nodeTokens?: ReadonlyMap<string, string>;
    /**
     * Authenticate (other) callers by TokenReview of their projected ServiceAccount token for `audience`;
     * only `ztunnelServiceAccount` may request other identities, and only for pods on its bound pod's node.
     */
    readonly tokenReview?: {
      readonly audience: string;
      readonly ztunnelServiceAccount: { readonly namespace: string; readonly name: string } | null;
    } | null;
  };
  readonly lease?: {
    readonly namespace?: string;
    readonly name?: string;
    readonly identity?: string;
    readonly durationSeconds?: number;
    readonly retryMs?: number;
  };
  /** Default true; false: this replica never writes status (nor ConfigMaps and waypoints). */
  readonly writeStatus?: boolean;
  /** The leader publishes the trust bundle as this ConfigMap (key root-cert.pem); null: not at all. */
  readonly rootCertConfigMap?: string | null;
  /** The leader creates each ferry-waypoint Gateway's objects from this template; null: not at all. */
  readonly waypointTemplate?: WaypointTemplate | null;
  /** Interval of the leader's full re-read of the objects it writes (default 5 minutes). */
  readonly leaderResyncMs?: number;
  /** Blocked (`ca`, `kubernetes-informers`) until the CA is loaded and every informer has listed. */
  readonly readiness?: ReadinessTracker;
  readonly rediscoverMs?: number;
}

export interface KubernetesController extends AsyncDisposable {
  readonly mesh: MeshController;
  readonly source: KubernetesSource;
  readonly xds: XdsServer;
  readonly ca: CaServer;
  /** The CA's root(s): what ztunnels and waypoints verify the CA and each other with. */
  trustBundlePem(): readonly string[];
  readonly elector: LeaderElector | null;
  readonly statusWriter: StatusWriter;
  readonly diagnostics: readonly Diagnostic[];
  /** Resolves once the status (and leader writes) of the latest translation were done or skipped. */
  statusSettled(): Promise<void>;
  /** Stops; `crash: true` skips releasing the lease (tests: a leader that dies). */
  close(opts?: { readonly crash?: boolean }): Promise<void>;
}

const MAX_DIAGNOSTICS = 500;

export async function startKubernetesController(opts: KubernetesControllerOptions): Promise<KubernetesController> {
  const log = opts.log;
  const client = opts.client ?? new KubeClient(loadKubeConfig(opts.kube ?? {}));
  const trustDomain = opts.trustDomain ?? 'cluster.local';
  const namespace = opts.namespace ?? opts.lease?.namespace ?? 'kube-system';
  const caBlock = opts.readiness?.block('ca');
  const syncBlock = opts.readiness?.block('kubernetes-informers');
  const diagnostics: Diagnostic[] = [];
  const source = new KubernetesSource({
    client,
    log: log.child({ scope: 'kube' }),
    ...(opts.rediscoverMs === undefined ? {} : { rediscoverMs: opts.rediscoverMs }),
    onDiagnostics: (list) => {
      diagnostics.push(...list);
      if (diagnostics.length > MAX_DIAGNOSTICS) diagnostics.splice(0, diagnostics.length - MAX_DIAGNOSTICS);
    },
  });
  const ca = await loadCa(opts, client, namespace, trustDomain, log).catch((err: unknown) => {
    if (opts.client === undefined) client.close();
    throw err;
  });
  caBlock?.unblock();
  const dnsNames = ['localhost', ...(opts.tlsDnsNames ?? [])];
  const xdsHost = opts.xds?.host ?? '127.0.0.1';
  const ipAddresses = [...new Set([...specificIp(xdsHost), ...(opts.tlsIpAddresses ?? [])])];
  const serving = await ca.issueServingCertificate({ dnsNames, ipAddresses });
  const xds = await startXdsServer({
    host: xdsHost,
    port: opts.xds?.port ?? 0,
    tls: { certChainPem: serving.certChainPem.join(''), keyPem: serving.privateKeyPem },
    log: log.child({ scope: 'xds' }),
    deferServing: true,
  });
  const cleanup: (() => Promise<void>)[] = [() => xds.close()];
  try {
    const statusWriter = new StatusWriter({
      client,
      log: log.child({ scope: 'status' }),
      stored: (kind, ns, name) => source.raw(kind, ns, name),
      version: (kind) => source.watching().get(kind),
    });
    let latest: { state: ClusterState; result: TranslateResult } | null = null;
    let statusRound: Promise<void> = Promise.resolve();
    const leaderWrites = new LeaderWrites({
      rootCerts:
        opts.rootCertConfigMap == null
          ? null
          : new RootCertPublisher({
              client,
              name: opts.rootCertConfigMap,
              rootCertPem: pemBundle(ca.trustBundlePem()),
              log: log.child({ scope: 'root-cert' }),
            }),
      waypoints:
        opts.waypointTemplate == null
          ? null
          : new WaypointDeployer({ client, template: opts.waypointTemplate, log: log.child({ scope: 'waypoints' }) }),
      ownNamespace: namespace,
      log,
      ...(opts.leaderResyncMs === undefined ? {} : { resyncMs: opts.leaderResyncMs }),
    });
    cleanup.push(async () => {
      leaderWrites.close();
      await leaderWrites.settled();
    });
    const elector =
      opts.writeStatus === false
        ? null
        : new LeaderElector({
            client,
            log: log.child({ scope: 'lease' }),
            namespace: opts.lease?.namespace ?? 'kube-system',
            name: opts.lease?.name ?? 'ferry-controller',
            identity: opts.lease?.identity ?? `${hostname()}_${randomBytes(4).toString('hex')}`,
            ...(opts.lease?.durationSeconds === undefined ? {} : { durationSeconds: opts.lease.durationSeconds }),
            ...(opts.lease?.retryMs === undefined ? {} : { retryMs: opts.lease.retryMs }),
            onChange: (leading) => {
              leaderWrites.setLeading(leading);
              if (leading) syncStatus(); // a new leader brings every status up to date at once
            },
          });
    const syncStatus = (): void => {
      if (latest === null || elector === null || !elector.leading) return;
      statusRound = statusWriter.sync(desiredStatuses(latest.state, latest.result));
    };
    const mesh = new MeshController({
      source,
      placement: kubernetesPlacement,
      publisher: {
        publish: (config, result) => {
          xds.publish(config);
          if (result !== undefined) xds.publishL7(result.l7);
          xds.startServing(); // idempotent: from the first complete publish on
        },
      },
      settings: {
        trustDomain,
        // The node agents annotate what they captured (docs/architecture.md "Node agent"): HBONE waits for it.
        requireRedirectionAnnotation: true,
        ...(opts.clusterDomain === undefined ? {} : { clusterDomain: opts.clusterDomain }),
      },
      log,
      onTranslated: (result, state) => {
        latest = { state, result };
        syncStatus();
        leaderWrites.update(state);
      },
    });
    const caServer = await startCaServer({
      ca,
      authorizer: caAuthorizer(opts, client, trustDomain, (node, identity) => mesh.identityOnNode(node, identity)),
      host: opts.ca?.host ?? '127.0.0.1',
      port: opts.ca?.port ?? 0,
      dnsNames: opts.tlsDnsNames ?? [],
      ipAddresses: opts.tlsIpAddresses ?? [],
      log: log.child({ scope: 'ca' }),
    });
    cleanup.push(() => caServer.close());
    await mesh.start();
    syncBlock?.unblock();
    elector?.start();
    let closing: Promise<void> | null = null;
    const close = (c: { readonly crash?: boolean } = {}): Promise<void> => {
      closing ??= (async () => {
        await elector?.close({ release: c.crash !== true });
        await mesh.close();
        await statusRound.catch(() => undefined);
        for (const f of cleanup.reverse()) await f().catch(() => undefined);
        if (opts.client === undefined) client.close(); // ours: its kept-alive connections go too
      })();
      return closing;
    };
    log.info({ xds: xds.address, ca: caServer.address, api: client.server }, 'controller ready (Kubernetes source)');
    return {
      mesh,
      source,
      xds,
      ca: caServer,
      trustBundlePem: () => ca.trustBundlePem(),
      elector,
      statusWriter,
      diagnostics,
      statusSettled: async () => {
        await mesh.settled();
        await statusRound;
        await leaderWrites.settled();
      },
      close,
      [Symbol.asyncDispose]: () => close(),
    };
  } catch (err) {
    await source.close().catch(() => undefined);
    for (const f of cleanup.reverse()) await f().catch(() => undefined);
    throw err;
  }
}

/** The CA root: the plug-in directory, else the shared Secret, else generated for this replica alone. */
async function loadCa(
  opts: KubernetesControllerOptions,
  client: KubeClient,
  namespace: string,
  trustDomain: string,
  log: Logger,
): Promise<CertificateAuthority> {
  if (opts.ca?.dir != null) return CertificateAuthority.loadPluggedIn(opts.ca.dir, { trustDomain });
  if (opts.ca?.secretName != null) {
    const caLog = log.child({ scope: 'ca' });
    return loadOrCreateCaSecret({ client, namespace, name: opts.ca.secretName, trustDomain, log: caLog });
  }
  log.warn({}, 'neither --ca-dir nor --ca-secret: a generated CA root (replicas do not share it)');
  return CertificateAuthority.generate({ trustDomain });
}

/** The listen host as an IP SAN when it is one specific address (not a wildcard). */
/**
 * Static node tokens, TokenReview, or both (node tokens first: the local cluster's node agents hold those,
 * its waypoint pods projected tokens).
 */
function caAuthorizer(
  opts: KubernetesControllerOptions,
  client: KubeClient,
  trustDomain: string,
  mayHold: (node: string, identity: SpiffeId) => boolean | Promise<boolean>,
): CaAuthorizer {
  const nodeTokens = opts.ca?.nodeTokens ?? new Map<string, string>();
  const review = opts.ca?.tokenReview;
  const byNodeToken = nodeBoundAuthorizer({ tokens: nodeTokens, mayHold });
  if (review == null) return byNodeToken;
  const byReview = tokenReviewAuthorizer({
    api: kubeTokenReviewApi(client),
    audience: review.audience,
    ztunnelServiceAccount: review.ztunnelServiceAccount,
    trustDomain,
    mayHold,
  });
  return nodeTokens.size === 0 ? byReview : firstAuthenticating([byNodeToken, byReview]);
}

function specificIp(host: string): string[] {
  return isIP(host) !== 0 && host !== '0.0.0.0' && host !== '::' ? [host] : [];
}

/** PEM blocks as one file's text: each block ends with a newline, so two roots never run together. */
function pemBundle(pems: readonly string[]): string {
  return pems.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('');
}
