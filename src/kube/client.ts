// A small raw-JSON client of the Kubernetes REST API on top of @kubernetes/client-node's KubeConfig: the
// kubeconfig decides server, TLS and credentials (client certificates, tokens, exec plugins) exactly as
// for kubectl; this module only sends requests and reads JSON. Raw JSON (not client-node's typed models)
// so that objects reach parseK8sObject exactly as a manifest would: one parser, one meaning. Paginated
// lists, discovery, get/put/patch for the status writer and leases. Network input is hostile: bodies are
// bounded and must be JSON objects.
import { existsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeError } from './errors.ts';

/** Lists and objects larger than this are refused (a cluster's whole Pod list stays far below). */
export const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;
const LIST_PAGE_SIZE = 500;
const REQUEST_TIMEOUT_MS = 30_000;
/** Where a real kubelet mounts the pod's ServiceAccount token, ca.crt and namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConfigChoice {
  /** `--kubeconfig PATH`; wins over the environment. */
  readonly kubeconfigPath?: string | null;
  /** KUBECONFIG as read by the process's config (never read here). */
  readonly kubeconfigEnv?: string | null;
  /** Whether KUBERNETES_SERVICE_HOST is set (the process runs in a pod). */
  readonly inCluster?: boolean;
  /**
   * FERRY_SERVICEACCOUNT_DIR: the in-cluster files somewhere else than SERVICE_ACCOUNT_DIR. The local
   * kubelet has no mount namespaces, so it mounts them in a per-pod host directory and says where.
   */
  readonly serviceAccountDir?: string | null;
}

/** `--kubeconfig`, else KUBECONFIG, else the in-cluster service account; FERRY_KUBE_CONFIG when none. */
export function loadKubeConfig(choice: KubeConfigChoice): KubeConfig {
  const kc = new KubeConfig();
  try {
    const path = choice.kubeconfigPath ?? choice.kubeconfigEnv?.split(':').find((p) => p !== '') ?? null;
    if (path !== null) kc.loadFromFile(path);
    else if (choice.inCluster === true && existsSync(join(saDir(choice), 'token'))) loadInCluster(kc, saDir(choice));
    else throw new Error('no --kubeconfig, no KUBECONFIG and not running in a pod');
  } catch (err) {
    throw new KubeError('FERRY_KUBE_CONFIG', `cannot load a kubeconfig: ${(err as Error).message}`, { cause: err });
  }
  if (kc.getCurrentCluster() === null) {
    throw new KubeError('FERRY_KUBE_CONFIG', 'the kubeconfig has no current cluster (set current-context)');
  }
  return kc;
}

function saDir(choice: KubeConfigChoice): string {
  return choice.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
}

// client-node's loadFromCluster reads only the fixed directory; the server (KUBERNETES_SERVICE_HOST/PORT)
// is taken from it and the token (re-read per request, as it rotates) and CA from `dir`.
function loadInCluster(kc: KubeConfig, dir: string): void {
  kc.loadFromCluster();
  const server = kc.getCurrentCluster()?.server ?? '';
  if (dir === SERVICE_ACCOUNT_DIR) return;
  kc.loadFromClusterAndUser(
    { name: 'inCluster', server, caFile: join(dir, 'ca.crt'), skipTLSVerify: false },
    { name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: join(dir, 'token') } } },
  );
}

export type Json = { readonly [key: string]: unknown };

export interface KubeList {
  readonly items: readonly Json[];
  readonly resourceVersion: string;
}

export class KubeClient {
  readonly config: KubeConfig;
  readonly #server: string;
  // client-node's cached agent does not keep connections alive: one TLS handshake per request. Ours does.
  #agent: https.Agent | null = null;

  constructor(config: KubeConfig) {
    this.config = config;
    const cluster = config.getCurrentCluster();
    if (cluster === null) throw new KubeError('FERRY_KUBE_CONFIG', 'the kubeconfig has no current cluster');
    this.#server = cluster.server.replace(/\/+$/, '');
  }

  get server(): string {
    return this.#server;
  }

  /** One request; resolves with the JSON body of a 2xx answer, rejects with KubeError (status, reason). */
  async request(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    body?: { readonly json: unknown; readonly contentType?: string },
    signal?: AbortSignal,
  ): Promise<Json> {
    const url = new URL(this.#server + path);
    // The kubeconfig's TLS material and credentials (tokens, exec plugins), refreshed per request.
    const opts: https.RequestOptions = { method, headers: { accept: 'application/json' } };
    await this.config.applyToHTTPSOptions(opts);
    if (url.protocol === 'https:') {
      this.#agent ??= new https.Agent({
        keepAlive: true,
        maxSockets: 64,
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        ...(opts.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: opts.rejectUnauthorized }),
        ...(opts.servername === undefined ? {} : { servername: opts.servername }),
      });
      opts.agent = this.#agent;
    }
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body.json));
    if (payload !== undefined) {
      // An explicit length: Node sends no chunked framing for DELETE, so a DeleteOptions body needs it.
      opts.headers = {
        ...opts.headers,
        'content-type': body?.contentType ?? 'application/json',
        'content-length': String(payload.length),
      };
    }
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    opts.signal = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    const what = `${method} ${path}`;
    const { status, text } = await send(url, opts, payload, what);
    let parsed: unknown = null;
    try {
      parsed = text === '' ? {} : JSON.parse(text);
    } catch {
      parsed = null;
    }
    if (status < 200 || status > 299) {
      const st = isJson(parsed) ? parsed : {};
      const reason = typeof st.reason === 'string' ? st.reason : '';
      const message = typeof st.message === 'string' ? st.message : '';
      throw new KubeError('FERRY_KUBE_REQUEST_FAILED', `${what}: ${status} ${reason} ${message}`.trim(), {
        status,
        reason,
      });
    }
    if (!isJson(parsed)) {
      throw new KubeError('FERRY_KUBE_BAD_RESPONSE', `${what}: the answer is not a JSON object`, { status });
    }
    return parsed;
  }

  /** Closes kept-alive connections (the process or test is done with this API). */
  close(): void {
    this.#agent?.destroy();
    this.#agent = null;
  }

  get(path: string, signal?: AbortSignal): Promise<Json> {
    return this.request('GET', path, undefined, signal);
  }

  /** Every item of a collection, page by page (limit/continue); the list's resourceVersion is the last page's. */
  async list(path: string, signal?: AbortSignal): Promise<KubeList> {
    const items: Json[] = [];
    let cont = '';
    let resourceVersion = '';
    do {
      const sep = path.includes('?') ? '&' : '?';
      const query = `${sep}limit=${LIST_PAGE_SIZE}${cont === '' ? '' : `&continue=${encodeURIComponent(cont)}`}`;
      const page = await this.get(path + query, signal);
      const meta = isJson(page.metadata) ? page.metadata : {};
      if (!Array.isArray(page.items)) {
        throw new KubeError('FERRY_KUBE_BAD_RESPONSE', `GET ${path}: a list without items`);
      }
      for (const item of page.items) if (isJson(item)) items.push(item);
      resourceVersion = typeof meta.resourceVersion === 'string' ? meta.resourceVersion : '';
      cont = typeof meta.continue === 'string' ? meta.continue : '';
    } while (cont !== '');
    return { items, resourceVersion };
  }
}

export function isJson(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function send(
  url: URL,
  opts: https.RequestOptions,
  payload: Buffer | undefined,
  what: string,
): Promise<{ status: number; text: string }> {
  const mod = url.protocol === 'http:' ? http : https;
  if (url.protocol === 'http:') opts.agent = undefined; // the kubeconfig's agent is an https one
  return new Promise((resolve, reject) => {
    const failed = (err: Error) =>
      reject(new KubeError('FERRY_KUBE_REQUEST_FAILED', `${what}: ${err.message}`, { cause: err }));
    const req = mod.request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          res.destroy();
          reject(new KubeError('FERRY_KUBE_BAD_RESPONSE', `${what}: answer larger than ${MAX_RESPONSE_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', failed);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', failed);
    req.end(payload);
  });
}
