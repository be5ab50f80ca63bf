// The local cluster's Kubernetes API server (src/local-cluster/apiserver, real HTTPS + bearer token) for
// controller tests, with a raw-JSON client for the test's own writes and restart on the same port with the
// same data directory (state kept, as after a crash). Objects are written through the REST API, never into
// the store, so what the controller sees is what any client would.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { type Json, KubeClient, loadKubeConfig } from '../../src/kube/client.ts';
import { crdManifest, FERRY_CRDS } from '../../src/local-cluster/apiserver/crds.ts';
import { type ApiServer, type ApiServerOptions, startApiServer } from '../../src/local-cluster/apiserver/server.ts';
import { silentLogger } from '../../src/runtime/logger.ts';

type Obj = Record<string, unknown>;
/** Server limits, `log` (default silent; its debug lines list every request) and `host` (default 127.0.0.1). */
type Limits = Partial<
  Pick<
    ApiServerOptions,
    | 'historyLimit'
    | 'maxWatchSeconds'
    | 'bookmarkIntervalMs'
    | 'preinstallCrds'
    | 'log'
    | 'gracefulPodDeletion'
    | 'host'
    | 'sidecarInjection'
  >
>;

export interface LocalApi {
  readonly kubeconfigPath: string;
  readonly client: KubeClient;
  readonly server: ApiServer;
  /** Stops and starts the server on the same port and data directory. */
  restart(pauseMs?: number): Promise<void>;
  create(obj: Obj): Promise<Json>;
  get(apiVersion: string, kind: string, namespace: string, name: string): Promise<Json>;
  replace(obj: Obj): Promise<Json>;
  /** DELETE; `options` is the DeleteOptions body (e.g. `{propagationPolicy: 'Orphan'}`). */
  remove(apiVersion: string, kind: string, namespace: string, name: string, options?: Obj): Promise<void>;
  /** PUT /status of an object (e.g. a Pod's podIP, as a kubelet would). */
  writeStatus(obj: Obj): Promise<Json>;
  list(apiVersion: string, kind: string): Promise<readonly Json[]>;
  /** Creates the CustomResourceDefinition of a kind Ferry reads (crds.ts). */
  installCrd(kind: string): Promise<void>;
}

const PLURALS: Record<string, string> = {
  Namespace: 'namespaces',
  Pod: 'pods',
  Service: 'services',
  ServiceAccount: 'serviceaccounts',
  Node: 'nodes',
  EndpointSlice: 'endpointslices',
  Lease: 'leases',
  ConfigMap: 'configmaps',
  Secret: 'secrets',
  Deployment: 'deployments',
  ...Object.fromEntries(FERRY_CRDS.map((c) => [c.kind, c.plural])),
};
const CLUSTER_SCOPED = new Set(['Namespace', 'Node', 'GatewayClass']);

function path(apiVersion: string, kind: string, namespace: string, name?: string): string {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const plural = PLURALS[kind];
  if (plural === undefined) throw new Error(`no plural for ${kind}`);
  const ns = CLUSTER_SCOPED.has(kind) || namespace === '' ? '' : `/namespaces/${namespace}`;
  return `${base}${ns}/${plural}${name === undefined ? '' : `/${name}`}`;
}

const meta = (o: Obj) => (o.metadata ?? {}) as { name: string; namespace?: string };

export async function startLocalApi(t: TestContext, limits: Limits = {}): Promise<LocalApi> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-k8s-api-'));
  const opts: ApiServerOptions = {
    dataDir: join(dir, 'api'),
    log: silentLogger,
    kubeconfigPath: join(dir, 'kubeconfig'),
    clusterName: 'ferry-test',
    ...limits,
  };
  let server = await startApiServer(opts);
  t.after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  const client = new KubeClient(loadKubeConfig({ kubeconfigPath: opts.kubeconfigPath ?? '' }));
  const api: LocalApi = {
    kubeconfigPath: opts.kubeconfigPath ?? '',
    client,
    get server() {
      return server;
    },
    async restart(pauseMs = 100) {
      const port = server.port;
      await server.close();
      await new Promise((r) => setTimeout(r, pauseMs));
      server = await startApiServer({ ...opts, port });
    },
    create: (o) =>
      client.request('POST', path(String(o.apiVersion), String(o.kind), meta(o).namespace ?? 'default'), { json: o }),
    get: (v, k, ns, n) => client.get(path(v, k, ns, n)),
    replace: (o) =>
      client.request('PUT', path(String(o.apiVersion), String(o.kind), meta(o).namespace ?? '', meta(o).name), {
        json: o,
      }),
    async remove(v, k, ns, n, options) {
      await client.request('DELETE', path(v, k, ns, n), options === undefined ? undefined : { json: options });
    },
    writeStatus: (o) =>
      client.request(
        'PUT',
        `${path(String(o.apiVersion), String(o.kind), meta(o).namespace ?? '', meta(o).name)}/status`,
        {
          json: o,
        },
      ),
    list: async (v, k) => (await client.list(path(v, k, ''))).items,
    async installCrd(kind) {
      const spec = FERRY_CRDS.find((c) => c.kind === kind);
      if (spec === undefined) throw new Error(`no CRD for ${kind}`);
      await client.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
        json: crdManifest(spec),
      });
    },
  };
  return api;
}
