// The controller on a Kubernetes API (`ferry controller --kubeconfig`, docs/architecture.md
// "Kubernetes source"): KubernetesSource → placement from the API (kubernetes-placement.ts) → translation →
// delta xDS to every ztunnel and waypoint, the node-bound CA (static node tokens, or TokenReview of projected
// ServiceAccount tokens: ca-token-review.ts), and Gateway API status written by the replica
// holding the Lease. Every replica serves xDS and the CA; xDS answers only from the first complete publish
// (never an empty snapshot to a reconnecting ztunnel). Nothing here knows the local cluster's files.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { CertificateAuthority } from '../identity/ca.ts';
import { nodeBoundAuthorizer } from '../identity/ca-authz.ts';
import { type CaServer, startCaServer } from '../identity/ca-server.ts';
import { KubeClient, type KubeConfigChoice, loadKubeConfig } from '../kube/client.ts';
import type { Logger } from '../runtime/logger.ts';
import { tokenReviewAuthorizer } from './ca-token-review.ts';
import { MeshController } from './controller.ts';
import { kubeTokenReviewApi } from './kube-token-review.ts';
import { kubernetesPlacement } from './kubernetes-placement.ts';
import { KubernetesSource } from './sources/kubernetes-source.ts';
import type { ClusterState, Diagnostic } from './sources/types.ts';
import { desiredStatuses } from './status/desired-status.ts';
import { LeaderElector } from './status/leader-election.ts';
import { StatusWriter } from './status/status-writer.ts';
import type { TranslateResult } from './translate/types.ts';
import { startXdsServer, type XdsServer } from './xds-server.ts';

export interface KubernetesControllerOptions {
  /** Where the kubeconfig comes from (or pass `client`). */
  readonly kube?: KubeConfigChoice;
  readonly client?: KubeClient;
  readonly log: Logger;
  readonly trustDomain?: string;
  readonly xds?: { readonly host?: string; readonly port?: number };
  readonly ca?: {
    readonly host?: string;
    readonly port?: number;
    /** Istio's cacerts layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem): shared by replicas. */
    readonly dir?: string | null;
    /** Bearer token → node name of each node agent (static tokens; ignored when `tokenReview` is set). */
    readonly nodeTokens?: ReadonlyMap<string, string>;
    /**
     * Authenticate callers by TokenReview of their projected ServiceAccount token for `audience`; only
     * `ztunnelServiceAccount` may request other identities, and only for pods on its bound pod's node.
     */
    readonly tokenReview?: {
      readonly audience: string;
      readonly ztunnelServiceAccount: { readonly namespace: string; readonly name: string };
    } | null;
  };
  readonly lease?: {
    readonly namespace?: string;
    readonly name?: string;
    readonly identity?: string;
    readonly durationSeconds?: number;
    readonly retryMs?: number;
  };
  /** Default true; false: this replica never writes status. */
  readonly writeStatus?: boolean;
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
  /** Resolves once the status of the latest translation was written (leader) or skipped (not leader). */
  statusSettled(): Promise<void>;
  /** Stops; `crash: true` skips releasing the lease (tests: a leader that dies). */
  close(opts?: { readonly crash?: boolean }): Promise<void>;
}

const MAX_DIAGNOSTICS = 500;

export async function startKubernetesController(opts: KubernetesControllerOptions): Promise<KubernetesController> {
  const log = opts.log;
  const client = opts.client ?? new KubeClient(loadKubeConfig(opts.kube ?? {}));
  const trustDomain = opts.trustDomain ?? 'cluster.local';
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
  const ca =
    opts.ca?.dir == null
      ? await CertificateAuthority.generate({ trustDomain })
      : await CertificateAuthority.loadPluggedIn(opts.ca.dir, { trustDomain });
  if (opts.ca?.dir == null) log.warn({}, 'no --ca-dir: a generated CA root (replicas do not share it)');
  const xds = await startXdsServer({
    host: opts.xds?.host ?? '127.0.0.1',
    port: opts.xds?.port ?? 0,
    tls: null,
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
      settings: { trustDomain },
      log,
      onTranslated: (result, state) => {
        latest = { state, result };
        syncStatus();
      },
    });
    const caServer = await startCaServer({
      ca,
      authorizer:
        opts.ca?.tokenReview == null
          ? nodeBoundAuthorizer({
              tokens: opts.ca?.nodeTokens ?? new Map(),
              mayHold: (node, identity) => mesh.identityOnNode(node, identity),
            })
          : tokenReviewAuthorizer({
              api: kubeTokenReviewApi(client),
              audience: opts.ca.tokenReview.audience,
              ztunnelServiceAccount: opts.ca.tokenReview.ztunnelServiceAccount,
              trustDomain,
              mayHold: (node, identity) => mesh.identityOnNode(node, identity),
            }),
      host: opts.ca?.host ?? '127.0.0.1',
      port: opts.ca?.port ?? 0,
      log: log.child({ scope: 'ca' }),
    });
    cleanup.push(() => caServer.close());
    await mesh.start();
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
