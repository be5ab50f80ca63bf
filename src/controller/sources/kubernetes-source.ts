// The Kubernetes source (docs/architecture.md "Kubernetes source"): one informer per watched
// kind (kube-resources.ts) whose group-version the API server serves; kinds it does not serve (a CRD not
// installed) are reported once and picked up when a periodic re-discovery finds them. Every object is
// parsed with the same parseK8sObject as a manifest (origin `api:<Kind>/<ns>/<name>`), so it means the
// same; an object Ferry refuses is left out and reported, as a bad manifest document is. Per-kind maps keyed
// by ns/name make an event O(1); a burst of events is coalesced (one timer, `coalesceMs` after the first
// event of the burst) into one ClusterState, in which only the kinds that changed are re-sorted.

import type { Json, KubeClient } from '../../kube/client.ts';
import { isJson } from '../../kube/client.ts';
import { KubeInformer } from '../../kube/informer.ts';
import type { Logger } from '../../runtime/logger.ts';
import { parseK8sObject } from './k8s-parse.ts';
import {
  collectionPath,
  diffWatches,
  discoverServed,
  groupVersion,
  planWatches,
  WATCHED_KINDS,
  type WatchedKind,
  watchedKind,
} from './kube-resources.ts';
import {
  type ClusterState,
  type Diagnostic,
  formatDiagnostic,
  type K8sKind,
  type K8sObject,
  type MeshSource,
  objectRef,
} from './types.ts';

export interface KubernetesSourceOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  /** Diagnostics of objects Ferry refused and of kinds the server does not serve. */
  readonly onDiagnostics?: (list: readonly Diagnostic[]) => void;
  /** How often to look for CRDs installed (or removed) since; default 30 s. */
  readonly rediscoverMs?: number;
  /** Delay from the first event of a burst to onChange; default 2 ms (the config-latency budget is ~10–19 ms). */
  readonly coalesceMs?: number;
  /** Only these kinds (tests); default all of WATCHED_KINDS. */
  readonly kinds?: readonly WatchedKind[];
}

interface Entry {
  readonly object: K8sObject;
  readonly raw: Json;
}

interface Running {
  readonly version: string;
  readonly informer: KubeInformer;
}

export class KubernetesSource implements MeshSource {
  readonly #opts: KubernetesSourceOptions;
  readonly #kinds: readonly WatchedKind[];
  readonly #objects = new Map<K8sKind, Map<string, Entry>>();
  readonly #sorted = new Map<K8sKind, readonly K8sObject[]>();
  readonly #dirty = new Set<K8sKind>();
  readonly #running = new Map<K8sKind, Running>();
  readonly #reportedMissing = new Set<K8sKind>();
  readonly #abort = new AbortController();
  #onChange: ((state: ClusterState) => void) | null = null;
  #flushTimer: NodeJS.Timeout | null = null;
  #rediscoverTimer: NodeJS.Timeout | null = null;
  #sequence = 0;
  #started = false;
  #discovering: Promise<void> = Promise.resolve();
  #changeCount = 0;

  constructor(opts: KubernetesSourceOptions) {
    this.#opts = opts;
    this.#kinds = opts.kinds ?? WATCHED_KINDS;
    for (const k of this.#kinds) {
      this.#objects.set(k.kind, new Map());
      this.#sorted.set(k.kind, []);
    }
  }

  /** Discovers, lists every served kind, emits the first state, then watches. Retries discovery until it works. */
  async start(onChange: (state: ClusterState) => void): Promise<void> {
    let attempt = 0;
    for (;;) {
      try {
        await this.#rediscover();
        break;
      } catch (err) {
        this.#abort.signal.throwIfAborted();
        const delay = Math.min(10_000, 200 * 2 ** attempt++);
        this.#opts.log.warn({ error: String((err as Error).message), retryInMs: delay }, 'API discovery failed');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    this.#started = true;
    this.#onChange = onChange;
    onChange(this.state());
    const every = this.#opts.rediscoverMs ?? 30_000;
    const tick = () => {
      this.#discovering = this.#rediscover().catch((err: unknown) => {
        if (!this.#abort.signal.aborted) {
          this.#opts.log.warn({ error: String((err as Error).message) }, 'API re-discovery failed; informers kept');
        }
      });
      void this.#discovering.then(() => {
        if (!this.#abort.signal.aborted) this.#rediscoverTimer = setTimeout(tick, every).unref();
      });
    };
    this.#rediscoverTimer = setTimeout(tick, every).unref();
  }

  /** The current state (every list sorted by namespace then name). */
  state(): ClusterState {
    for (const kind of this.#dirty) {
      const list = [...(this.#objects.get(kind)?.values() ?? [])].map((e) => e.object);
      list.sort(byNamespaceThenName);
      this.#sorted.set(kind, list);
    }
    this.#dirty.clear();
    const get = (kind: K8sKind) => this.#sorted.get(kind) ?? [];
    return {
      namespaces: get('Namespace'),
      pods: get('Pod'),
      deployments: [],
      services: get('Service'),
      serviceAccounts: get('ServiceAccount'),
      authorizationPolicies: get('AuthorizationPolicy'),
      peerAuthentications: get('PeerAuthentication'),
      gateways: get('Gateway'),
      httpRoutes: get('HTTPRoute'),
      grpcRoutes: get('GRPCRoute'),
      tcpRoutes: get('TCPRoute'),
      referenceGrants: get('ReferenceGrant'),
      nodes: get('Node'),
      endpointSlices: get('EndpointSlice'),
      gatewayClasses: get('GatewayClass'),
    } as ClusterState;
  }

  /** The object as the API last sent it (status writers compare against its status), or undefined. */
  raw(kind: K8sKind, namespace: string, name: string): Json | undefined {
    return this.#objects.get(kind)?.get(`${namespace}/${name}`)?.raw;
  }

  /** kind → version watched now. */
  watching(): ReadonlyMap<K8sKind, string> {
    return new Map([...this.#running].map(([k, r]) => [k, r.version]));
  }

  /** Per kind watched: full lists made (1 + one per 410 Gone) and list/watch failures retried. */
  informerStats(): ReadonlyMap<K8sKind, { readonly lists: number; readonly errors: number }> {
    return new Map([...this.#running].map(([k, r]) => [k, { lists: r.informer.lists, errors: r.informer.errors }]));
  }

  /** Kinds the server does not serve (reported). */
  missing(): readonly K8sKind[] {
    return [...this.#reportedMissing];
  }

  /** Object events applied so far (adds, updates, deletes). */
  get changes(): number {
    return this.#changeCount;
  }

  async close(): Promise<void> {
    this.#abort.abort();
    this.#onChange = null;
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    if (this.#rediscoverTimer !== null) clearTimeout(this.#rediscoverTimer);
    for (const r of this.#running.values()) r.informer.stop();
    this.#running.clear();
    await this.#discovering.catch(() => {});
  }

  async #rediscover(): Promise<void> {
    const served = await discoverServed(this.#opts.client, this.#abort.signal, this.#kinds);
    const running = new Map([...this.#running].map(([k, r]) => [k, r.version]));
    const actions = diffWatches(running, planWatches(served, this.#kinds), this.#reportedMissing);
    const starts: Promise<void>[] = [];
    const diags: Diagnostic[] = [];
    for (const a of actions) {
      const k = watchedKind(a.kind);
      switch (a.action) {
        case 'report-missing':
          this.#reportedMissing.add(a.kind);
          diags.push(missingKind(k));
          break;
        case 'stop':
          this.#stopInformer(a.kind);
          break;
        case 'switch':
          this.#stopInformer(a.kind);
          starts.push(this.#startInformer(k, a.version));
          break;
        case 'start':
          this.#reportedMissing.delete(a.kind);
          starts.push(this.#startInformer(k, a.version));
          break;
      }
    }
    if (diags.length > 0) this.#report(diags);
    await Promise.all(starts);
  }

  async #startInformer(k: WatchedKind, version: string): Promise<void> {
    const apiVersion = groupVersion(k.group, version);
    const informer = new KubeInformer({
      config: this.#opts.client.config,
      client: this.#opts.client,
      path: collectionPath(k, version),
      log: this.#opts.log.child({ kind: k.kind }),
      handlers: {
        upsert: (raw) => this.#upsert(k, apiVersion, raw),
        remove: (raw) => this.#remove(k, raw),
      },
    });
    this.#running.set(k.kind, { version, informer });
    await informer.start(this.#abort.signal);
    if (this.#started) this.#opts.log.info({ kind: k.kind, version }, 'watching a kind the API server now serves');
  }

  #stopInformer(kind: K8sKind): void {
    this.#running.get(kind)?.informer.stop();
    this.#running.delete(kind);
    const objects = this.#objects.get(kind);
    if (objects !== undefined && objects.size > 0) {
      objects.clear();
      this.#changed(kind);
    }
  }

  #upsert(k: WatchedKind, apiVersion: string, raw: Json): void {
    const meta = isJson(raw.metadata) ? raw.metadata : {};
    const name = typeof meta.name === 'string' ? meta.name : '';
    const namespace = k.namespaced && typeof meta.namespace === 'string' ? meta.namespace : '';
    const key = `${namespace}/${name}`;
    const objects = this.#objects.get(k.kind);
    if (objects === undefined) return;
    const old = objects.get(key);
    // List items carry no kind/apiVersion; watch events do. The informer's group-version is the truth.
    const doc = { ...raw, kind: k.kind, apiVersion };
    const parsed = parseK8sObject(doc, {
      origin: { file: `api:${objectRef(k.kind, namespace, name)}`, line: null },
      // An update keeps the object's age: "oldest wins" ties must not flip on every status write.
      sequence: old?.object.metadata.sequence ?? this.#sequence++,
      defaultNamespace: namespace,
    });
    if (parsed.diagnostics.length > 0) this.#report(parsed.diagnostics);
    if (parsed.object === null) {
      if (objects.delete(key)) this.#changed(k.kind);
      return;
    }
    objects.set(key, { object: parsed.object, raw });
    this.#changed(k.kind);
  }

  #remove(k: WatchedKind, raw: Json): void {
    const meta = isJson(raw.metadata) ? raw.metadata : {};
    const name = typeof meta.name === 'string' ? meta.name : '';
    const namespace = k.namespaced && typeof meta.namespace === 'string' ? meta.namespace : '';
    if (this.#objects.get(k.kind)?.delete(`${namespace}/${name}`) === true) this.#changed(k.kind);
  }

  #changed(kind: K8sKind): void {
    this.#changeCount++;
    this.#dirty.add(kind);
    if (this.#onChange === null || this.#flushTimer !== null) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = null;
      this.#onChange?.(this.state());
    }, this.#opts.coalesceMs ?? 2);
  }

  #report(list: readonly Diagnostic[]): void {
    for (const d of list) {
      const line = formatDiagnostic(d);
      if (d.severity === 'error') this.#opts.log.error({ code: d.code, object: d.object }, line);
      else this.#opts.log.warn({ code: d.code, object: d.object }, line);
    }
    this.#opts.onDiagnostics?.(list);
  }
}

function missingKind(k: WatchedKind): Diagnostic {
  const gvs = k.versions.map((v) => groupVersion(k.group, v)).join(' or ');
  return {
    severity: 'warning',
    code: 'FERRY_KUBE_KIND_MISSING',
    object: `${k.kind}.${k.group}`,
    field: '',
    message: `the API server serves no ${k.kind} (${gvs}): its CRD is not installed; watched once it is`,
    file: null,
    line: null,
  };
}

function byNamespaceThenName(a: K8sObject, b: K8sObject): number {
  const [x, y] =
    a.metadata.namespace === b.metadata.namespace
      ? [a.metadata.name, b.metadata.name]
      : [a.metadata.namespace, b.metadata.namespace];
  return x < y ? -1 : x > y ? 1 : 0;
}
