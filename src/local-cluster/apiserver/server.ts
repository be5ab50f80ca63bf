// The local Kubernetes API server (docs/architecture.md, "Local Kubernetes API server"): HTTPS on loopback
// with a bearer token, discovery, CRUD + watch over the durable object store. This module is the I/O shell:
// it authenticates, reads bounded bodies, routes, and turns ApiErrors into Status replies; the verbs live in
// handlers.ts, watches in watch.ts, storage in store.ts and wal.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../runtime/logger.ts';
import { crdManifests } from './crds.ts';
import { bearerMatches, ensurePrivateDir, loadOrCreateCredentials } from './credentials.ts';
import { coreVersions, group, groupList, resourceList, versionInfo } from './discovery.ts';
import { Handlers, parseSelection } from './handlers.ts';
import type { Obj } from './json.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { acquireDataDirLock } from './lock.ts';
import { openApiV2, openApiV3Gv, openApiV3Root } from './openapi.ts';
import { patchTypeOf, readBody } from './request-body.ts';
import { ResourceRegistry, type ResourceType, storageKeyOf } from './resources.ts';
import { parseRoute, type Route } from './routes.ts';
import { admitPodForSidecar, type SidecarInjectionValues } from './sidecar-admission.ts';
import { ApiError, failure, internalError, type K8sStatus } from './status.ts';
import { ObjectStore } from './store.ts';
import { asTable, wantsTable } from './table.ts';
import { DEFAULT_AUDIENCE, reviewToken, TokenIssuer } from './tokens.ts';
import { WriteAheadLog } from './wal.ts';
import { WatchHub } from './watch.ts';

export interface ApiServerOptions {
  /** Holds the log, snapshot, credentials and token; created 0700. One server per directory (locked). */
  readonly dataDir: string;
  readonly host?: string;
  /** More addresses the serving certificate is valid for (the pods' gateway, where a relay forwards). */
  readonly extraCertHosts?: readonly string[];
  /** 0 picks a free port. */
  readonly port?: number;
  readonly log: Logger;
  /** Also write a kubeconfig here (0600). */
  readonly kubeconfigPath?: string;
  readonly clusterName?: string;
  /** Create the CustomResourceDefinitions of the Istio and Gateway API kinds Ferry reads (crds.ts). */
  readonly preinstallCrds?: boolean;
  readonly maxBodyBytes?: number;
  readonly maxWatchers?: number;
  readonly maxWatchSeconds?: number;
  readonly bookmarkIntervalMs?: number;
  readonly historyLimit?: number;
  readonly compactBytes?: number;
  readonly serviceCidr?: string;
  /** How long a deleted namespace stays Terminating before it and its objects are removed. */
  readonly namespaceFinalizeDelayMs?: number;
  /** Delete bound pods gracefully, for clusters whose kubelets finish the deletion (handlers.ts). */
  readonly gracefulPodDeletion?: boolean;
  /** Inject Ferry's sidecar into pods selected for it, on CREATE (sidecar-admission.ts). */
  readonly sidecarInjection?: SidecarInjectionValues;
}

export interface ApiServer {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly caPem: string;
  readonly token: string;
  readonly kubeconfigPath: string | null;
  /** Current resourceVersion (for tests and status output). */
  resourceVersion(): number;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024; // the real server's limit for a request body
const DEFAULT_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log;
  await ensurePrivateDir(opts.dataDir);
  const lock = await acquireDataDirLock(opts.dataDir);
  try {
    return await start(opts, host, log, lock);
  } catch (err) {
    await lock.release();
    throw err;
  }
}

async function start(
  opts: ApiServerOptions,
  host: string,
  log: Logger,
  lock: { release(): Promise<void> },
): Promise<ApiServer> {
  const creds = await loadOrCreateCredentials(opts.dataDir, [host, ...(opts.extraCertHosts ?? [])]);
  const store = new ObjectStore({
    historyLimit: opts.historyLimit ?? 10_000,
    compactBytes: opts.compactBytes ?? 64 * 1024 * 1024,
  });
  const { wal, contents } = await WriteAheadLog.open(opts.dataDir, log);
  store.restore(contents.snapshot, contents.records, wal, opts.dataDir);
  log.info(
    { dataDir: opts.dataDir, resourceVersion: store.resourceVersion, records: contents.records.length },
    'API store loaded',
  );

  const crdKey = 'apiextensions.k8s.io/customresourcedefinitions';
  const registry = new ResourceRegistry(store.list(crdKey));
  store.subscribe(crdKey, () => registry.rebuild(store.list(crdKey)));
  const finalizeDelayMs = opts.namespaceFinalizeDelayMs ?? 1500;
  const timers = new Set<NodeJS.Timeout>();
  const finalizeLater = (name: string): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      handlers
        .finalizeNamespace(name)
        .catch((err: unknown) => log.error({ namespace: name, err: String(err) }, 'namespace deletion failed'));
    }, finalizeDelayMs);
    timers.add(timer);
  };
  const handlers = new Handlers({
    store,
    registry,
    serviceCidr: opts.serviceCidr ?? '10.96.0.0/16',
    onNamespaceTerminating: finalizeLater,
    gracefulPodDeletion: opts.gracefulPodDeletion === true,
    ...(opts.sidecarInjection === undefined ? {} : { admitPod: sidecarAdmitter(opts.sidecarInjection, log) }),
  });
  for (const name of handlers.terminatingNamespaces()) finalizeLater(name);
  await seed(store, registry, handlers, opts.preinstallCrds === true);

  const watches = new WatchHub(
    store,
    {
      maxWatchers: opts.maxWatchers ?? 1000,
      maxWatchMs: (opts.maxWatchSeconds ?? 1800) * 1000,
      bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 10_000,
      maxBufferedBytes: 16 * 1024 * 1024,
    },
    log,
  );
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  let serverAddress = '';
  const server: Server = createServer({ cert: creds.certPem, key: creds.keyPem, minVersion: 'TLSv1.2' }, (req, res) => {
    serve(req, res).catch((err: unknown) => {
      log.error({ err: String((err as Error)?.stack ?? err) }, 'API request failed');
      if (!res.headersSent) send(res, 500, internalError('internal error').status);
      else res.destroy();
    });
  });
  server.maxConnections = 4096;
  server.on('tlsClientError', () => undefined); // a client that fails the handshake only hurts itself

  const ctx: RequestContext = {
    handlers,
    registry,
    store,
    watches,
    maxBody,
    token: creds.token,
    log,
    address: () => serverAddress,
  };
  const tokens = new TokenIssuer(creds.saKeyPem, store);
  const serve = (req: IncomingMessage, res: ServerResponse): Promise<void> => handle(ctx, tokens, req, res);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  serverAddress = `${host}:${port}`;
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const kubeconfigPath = opts.kubeconfigPath ?? null;
  if (kubeconfigPath !== null) {
    await writeKubeconfig(kubeconfigPath, {
      server: url,
      caPem: creds.caPem,
      token: creds.token,
      clusterName: opts.clusterName ?? 'ferry',
    });
  }
  log.info({ url, dataDir: opts.dataDir, kubeconfig: kubeconfigPath }, 'API server ready');
  let closed: Promise<void> | null = null;
  return {
    url,
    port,
    caPem: creds.caPem,
    token: creds.token,
    kubeconfigPath,
    resourceVersion: () => store.resourceVersion,
    close: () => {
      closed ??= (async () => {
        for (const timer of timers) clearTimeout(timer);
        watches.closeAll();
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await done;
        await store.close();
        await lock.release();
      })();
      return closed;
    },
  };
}

// First start: the namespaces every cluster has; optionally the CRDs of the kinds Ferry reads.
async function seed(store: ObjectStore, registry: ResourceRegistry, handlers: Handlers, crds: boolean): Promise<void> {
  const ns = registry.find('', 'v1', 'namespaces') as ResourceType;
  const fresh = store.resourceVersion === 0;
  for (const name of DEFAULT_NAMESPACES) {
    if (!fresh && name !== 'default') continue; // a deleted kube-public stays deleted; "default" always exists
    if (store.get('/namespaces', '', name) === undefined) await handlers.create(ns, '', { metadata: { name } }, false);
  }
  if (!crds) return;
  const crdType = registry.find('apiextensions.k8s.io', 'v1', 'customresourcedefinitions') as ResourceType;
  for (const crd of crdManifests()) {
    const name = String((crd.metadata as Obj).name);
    if (store.get(storageKeyOf(crdType), '', name) === undefined) await handlers.create(crdType, '', crd, false);
  }
}

interface RequestContext {
  readonly handlers: Handlers;
  readonly registry: ResourceRegistry;
  readonly store: ObjectStore;
  readonly watches: WatchHub;
  readonly maxBody: number;
  readonly token: string;
  readonly log: Logger;
  readonly address: () => string;
}

// A pod's ServiceAccount token (TokenRequest, default audience, bound pod still there) is a credential, as a
// real API server accepts it. No RBAC: every authenticated caller may do everything (docs/install.md).
function isServiceAccountBearer(tokens: TokenIssuer, header: string | undefined): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false;
  return tokens.verify(header.slice('Bearer '.length).trim(), [DEFAULT_AUDIENCE]).ok;
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-cache, private',
  });
  res.end(text);
}

async function handle(
  ctx: RequestContext,
  tokens: TokenIssuer,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (
    !bearerMatches(req.headers.authorization, ctx.token) &&
    !isServiceAccountBearer(tokens, req.headers.authorization)
  ) {
    req.resume();
    send(res, 401, failure(401, 'Unauthorized', 'Unauthorized').status);
    return;
  }
  try {
    const url = new URL(req.url ?? '/', 'https://apiserver');
    const route = parseRoute(url.pathname);
    const reply = await dispatch(ctx, tokens, route, req, res, url.searchParams);
    if (ctx.log.isLevelEnabled('debug'))
      ctx.log.debug({ method: req.method, path: url.pathname, code: reply?.code ?? 200 }, 'request');
    if (reply === null) return; // streamed (watch)
    const body =
      reply.table !== undefined && wantsTable(req.headers.accept)
        ? asTable(reply.table, reply.body, { includeObject: url.searchParams.get('includeObject'), withColumns: true })
        : reply.body;
    send(res, reply.code, body);
  } catch (err) {
    if (err instanceof ApiError) {
      req.resume();
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendStatus(res, err.status);
      return;
    }
    throw err;
  }
}

function sendStatus(res: ServerResponse, status: K8sStatus): void {
  if (status.code === 413) res.setHeader('connection', 'close');
  if (status.details?.retryAfterSeconds !== undefined)
    res.setHeader('retry-after', String(status.details.retryAfterSeconds));
  send(res, status.code, status);
}

interface Reply {
  readonly code: number;
  readonly body: unknown;
  /** The resource, when a Table may be asked for instead (kubectl get). */
  readonly table?: ResourceType;
}

const NOT_FOUND_PAGE = (): ApiError => failure(404, 'NotFound', 'the server could not find the requested resource');

async function dispatch(
  ctx: RequestContext,
  tokens: TokenIssuer,
  route: Route,
  req: IncomingMessage,
  res: ServerResponse,
  query: URLSearchParams,
): Promise<Reply | null> {
  const method = req.method ?? 'GET';
  if (route.kind !== 'resource') {
    if (method !== 'GET' && method !== 'HEAD') throw failure(405, 'MethodNotAllowed', `${method} is not allowed here`);
    switch (route.kind) {
      case 'version':
        return { code: 200, body: versionInfo() };
      case 'health':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
        return null;
      case 'api':
        return { code: 200, body: coreVersions(ctx.address()) };
      case 'apis':
        return { code: 200, body: groupList(ctx.registry) };
      case 'group':
        return { code: 200, body: group(ctx.registry, route.group) ?? throwIt(NOT_FOUND_PAGE()) };
      case 'resource-list':
        return { code: 200, body: resourceList(ctx.registry, route.group, route.version) ?? throwIt(NOT_FOUND_PAGE()) };
      case 'openapi-v2':
        // kubectl asks for the protobuf form; an empty message is a valid, empty openapi_v2.Document (it then
        // validates nothing client-side and reports unknown kinds as "no matches for kind").
        if ((req.headers.accept ?? '').includes('protobuf')) {
          res.writeHead(200, {
            'content-type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf',
            'content-length': 0,
          });
          res.end();
          return null;
        }
        return { code: 200, body: openApiV2(ctx.registry) };
      case 'openapi-v3-root':
        return { code: 200, body: openApiV3Root(ctx.registry) };
      case 'openapi-v3-gv':
        return { code: 200, body: openApiV3Gv(ctx.registry, route.group, route.version) ?? throwIt(NOT_FOUND_PAGE()) };
      case 'unknown':
        throw NOT_FOUND_PAGE();
    }
  }
  const t = ctx.registry.find(route.group, route.version, route.resource);
  if (t === undefined) throw NOT_FOUND_PAGE();
  if (!t.namespaced && route.namespace !== null) throw NOT_FOUND_PAGE();
  const ns = route.namespace ?? '';
  const dryRun = query.get('dryRun') === 'All';
  const h = ctx.handlers;
  const sub = route.subresource;
  const allowed = (verb: ResourceType['verbs'][number]): void => {
    if (!t.verbs.includes(verb)) throw failure(405, 'MethodNotAllowed', `${verb} is not supported on ${t.resource}`);
  };
  if (
    sub !== null &&
    !(sub === 'status' && t.statusSubresource) &&
    !(sub === 'scale' && t.scaleSubresource) &&
    !(sub === 'token' && t.kind === 'ServiceAccount' && t.group === '') &&
    !(sub === 'binding' && t.kind === 'Pod' && t.group === '' && method === 'POST')
  ) {
    throw NOT_FOUND_PAGE();
  }
  const watch = route.watchPath || query.get('watch') === 'true' || query.get('watch') === '1';
  switch (method) {
    case 'GET': {
      if (watch) {
        allowed('watch');
        if (sub !== null) throw NOT_FOUND_PAGE();
        await ctx.store.durable();
        const includeObject = query.get('includeObject');
        const render = wantsTable(req.headers.accept)
          ? (o: Obj, first: boolean) => asTable(t, o, { includeObject, withColumns: first })
          : undefined;
        ctx.watches.serve(
          {
            t,
            namespace: ns,
            name: route.name,
            selection: parseSelection(query, t),
            query,
            ...(render === undefined ? {} : { render }),
          },
          res,
        );
        return null;
      }
      await ctx.store.durable();
      if (route.name === null) {
        allowed('list');
        return { ...h.list(t, ns, query), table: t };
      }
      allowed('get');
      if (sub === 'scale') return h.getScale(t, ns, route.name);
      return { ...h.get(t, ns, route.name), table: t };
    }
    case 'POST': {
      const body = await readBody(req, ctx.maxBody, 'create');
      if (t.virtual) return reviewToken(tokens, body, ctx.token);
      if (sub === 'token' && route.name !== null) return tokens.tokenRequest(t, ns, route.name, body);
      if (sub === 'binding' && route.name !== null) return h.bind(t, ns, route.name, body);
      if (route.name !== null) throw failure(405, 'MethodNotAllowed', `POST is not allowed on a named ${t.kind}`);
      allowed('create');
      if (t.namespaced && route.namespace === null) throw NOT_FOUND_PAGE();
      return h.create(t, ns, body, dryRun);
    }
    case 'PUT': {
      if (route.name === null) throw failure(405, 'MethodNotAllowed', 'PUT needs an object name');
      allowed('update');
      const body = await readBody(req, ctx.maxBody, 'update');
      if (sub === 'scale') return h.updateScale(t, ns, route.name, body, null, dryRun);
      return h.update(t, ns, route.name, body, sub === 'status' ? 'status' : null, dryRun);
    }
    case 'PATCH': {
      if (route.name === null) throw failure(405, 'MethodNotAllowed', 'PATCH needs an object name');
      allowed('patch');
      const type = patchTypeOf(req.headers['content-type']);
      const body = await readBody(req, ctx.maxBody, type === 'apply' ? 'apply' : 'patch');
      if (sub === 'scale') return h.updateScale(t, ns, route.name, body, type, dryRun);
      return h.patch(t, ns, route.name, body, type, sub === 'status' ? 'status' : null, dryRun);
    }
    case 'DELETE': {
      const body = withQueryGrace(await readBody(req, ctx.maxBody, 'delete'), query);
      if (route.name === null) {
        allowed('deletecollection');
        return h.deleteCollection(t, ns, query, body, dryRun);
      }
      allowed('delete');
      return h.delete(t, ns, route.name, body, dryRun);
    }
    default:
      throw failure(405, 'MethodNotAllowed', `${method} is not allowed`);
  }
}

// `?gracePeriodSeconds=N` counts like DeleteOptions.gracePeriodSeconds in the body (the body wins).
function withQueryGrace(body: unknown, query: URLSearchParams): unknown {
  const text = query.get('gracePeriodSeconds');
  if (text === null || !/^[0-9]+$/.test(text)) return body;
  const options = typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {};
  return 'gracePeriodSeconds' in options ? options : { ...options, gracePeriodSeconds: Number(text) };
}

function throwIt(err: ApiError): never {
  throw err;
}

function sidecarAdmitter(values: SidecarInjectionValues, log: Logger) {
  return (pod: Obj, namespace: string, namespaceLabels: Readonly<Record<string, string>>): Obj => {
    const result = admitPodForSidecar(pod, namespace, namespaceLabels, values);
    if (result.decision.inject) {
      log.info({ namespace, pod: metaName(pod), reason: result.decision.reason }, 'sidecar injected');
    }
    return result.pod;
  };
}

function metaName(pod: Obj): string {
  const m = pod.metadata;
  return typeof m === 'object' && m !== null && 'name' in m ? String(m.name) : '';
}
