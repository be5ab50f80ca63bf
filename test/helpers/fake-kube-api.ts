// A minimal Kubernetes API server over real HTTP, for controller tests while no real kube-apiserver (or the
// local cluster's) is reachable: a boundary mock, as docs/architecture.md's test layers allow. It serves what
// @kubernetes/client-node's informers and Ferry's status writer and lease use: discovery (/api, /apis, group
// versions), list (one page), watch with resourceVersion resume, BOOKMARK events and 410 Gone past a compacted
// history, get/create/replace/merge-patch/delete with resourceVersion conflicts (409), metadata.generation
// (bumped by spec changes only) and the /status subresource. CRDs can be installed while it runs; the server
// can be stopped and restarted on the same port with its state kept, and every watch closed on demand.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

type Obj = Record<string, unknown>;
interface Resource {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}
interface Event {
  readonly rv: number;
  readonly resource: string;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: Obj;
}
interface Watcher {
  readonly resource: string;
  readonly namespace: string | null;
  readonly res: http.ServerResponse;
}

const BUILTIN: readonly Resource[] = [
  { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false },
  { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true },
  { group: '', version: 'v1', plural: 'services', kind: 'Service', namespaced: true },
  { group: '', version: 'v1', plural: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true },
  { group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false },
  { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', kind: 'EndpointSlice', namespaced: true },
  { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
];

const gv = (r: { group: string; version: string }) => (r.group === '' ? r.version : `${r.group}/${r.version}`);
const keyOf = (r: Resource) => `${gv(r)}/${r.plural}`;
const clone = <T>(v: T): T => structuredClone(v);

export interface FakeKubeApiOptions {
  readonly bookmarkMs?: number;
}

export class FakeKubeApi {
  readonly #resources = new Map<string, Resource>();
  // Objects by resource key, then `ns/name`. CRD versions of one kind share storage (same plural + group).
  readonly #objects = new Map<string, Map<string, Obj>>();
  #events: Event[] = [];
  #oldestRv = 0;
  #rv = 1;
  readonly #watchers = new Set<Watcher>();
  #server: http.Server | null = null;
  #port = 0;
  readonly #bookmarkMs: number;
  #bookmarkTimer: NodeJS.Timeout | null = null;
  /** Writes per `METHOD path` (status writes are asserted on). */
  readonly writes: string[] = [];

  constructor(opts: FakeKubeApiOptions = {}) {
    this.#bookmarkMs = opts.bookmarkMs ?? 1000;
    for (const r of BUILTIN) this.#resources.set(keyOf(r), r);
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => this.#handle(req, res));
    server.listen(this.#port, '127.0.0.1');
    await once(server, 'listening');
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
    this.#bookmarkTimer = setInterval(() => this.#bookmarks(), this.#bookmarkMs).unref();
  }

  /** Stops serving (every connection dropped); state is kept for start() on the same port. */
  async stop(): Promise<void> {
    if (this.#bookmarkTimer !== null) clearInterval(this.#bookmarkTimer);
    this.closeWatches();
    const s = this.#server;
    this.#server = null;
    if (s !== null) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  async writeKubeconfig(dir: string): Promise<string> {
    const path = join(dir, 'kubeconfig');
    const text = `apiVersion: v1\nkind: Config\nclusters: [{name: fake, cluster: {server: "${this.url}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: test}}]\ncontexts: [{name: c, context: {cluster: fake, user: u}}]\ncurrent-context: c\n`;
    await writeFile(path, text, { mode: 0o600 });
    return path;
  }

  installCrd(group: string, versions: readonly string[], plural: string, kind: string, namespaced = true): void {
    for (const version of versions)
      this.#resources.set(keyOf({ group, version, plural, kind, namespaced }), {
        group,
        version,
        plural,
        kind,
        namespaced,
      });
  }

  /** Ends every open watch (clients resume from their last resourceVersion). */
  closeWatches(): void {
    for (const w of this.#watchers) w.res.end();
    this.#watchers.clear();
  }

  /** Forgets the event history, as an etcd compaction past the current revision: every watch resuming from a
   * resourceVersion seen so far gets 410 Gone (until a fresh list hands out a new one). */
  compact(): void {
    this.#events = [];
    this.#oldestRv = this.#rv + 1;
  }

  get resourceVersion(): number {
    return this.#rv;
  }

  // ---- direct access (what tests do "through the API" goes through HTTP instead, in the test's client) ----

  create(obj: Obj): Obj {
    const r = this.#resourceOf(String(obj.apiVersion), String(obj.kind));
    const meta = (obj.metadata ?? {}) as Obj;
    const ns = r.namespaced ? String(meta.namespace ?? 'default') : '';
    return this.#create(r, ns, obj).body;
  }

  list(apiVersion: string, kind: string): Obj[] {
    const r = this.#resourceOf(apiVersion, kind);
    return [...(this.#objects.get(this.#storage(r))?.values() ?? [])].map(clone);
  }

  get(apiVersion: string, kind: string, namespace: string, name: string): Obj | undefined {
    const r = this.#resourceOf(apiVersion, kind);
    const o = this.#objects.get(this.#storage(r))?.get(`${namespace}/${name}`);
    return o === undefined ? undefined : clone(o);
  }

  update(obj: Obj): Obj {
    const r = this.#resourceOf(String(obj.apiVersion), String(obj.kind));
    const meta = (obj.metadata ?? {}) as Obj;
    const out = this.#replace(
      r,
      r.namespaced ? String(meta.namespace ?? 'default') : '',
      String(meta.name),
      obj,
      false,
      true,
    );
    if (out.status !== 200) throw new Error(JSON.stringify(out.body));
    return out.body;
  }

  delete(apiVersion: string, kind: string, namespace: string, name: string): void {
    const r = this.#resourceOf(apiVersion, kind);
    this.#delete(r, namespace, name);
  }

  #resourceOf(apiVersion: string, kind: string): Resource {
    for (const r of this.#resources.values()) if (gv(r) === apiVersion && r.kind === kind) return r;
    throw new Error(`not served: ${apiVersion} ${kind}`);
  }

  #storage(r: Resource): string {
    return `${r.group}/${r.plural}`;
  }

  #emit(r: Resource, type: Event['type'], object: Obj): void {
    const rv = Number((object.metadata as Obj).resourceVersion);
    const e: Event = { rv, resource: this.#storage(r), type, object: clone(object) };
    this.#events.push(e);
    for (const w of this.#watchers) {
      const ns = String((object.metadata as Obj).namespace ?? '');
      if (w.resource === e.resource && (w.namespace === null || w.namespace === ns)) this.#send(w, type, r, object);
    }
  }

  #send(w: Watcher, type: string, r: Resource, object: Obj): void {
    w.res.write(`${JSON.stringify({ type, object: { ...object, kind: r.kind, apiVersion: gv(r) } })}\n`);
  }

  #bookmarks(): void {
    for (const w of this.#watchers) {
      w.res.write(
        `${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(this.#rv) } } })}\n`,
      );
    }
  }

  #create(r: Resource, ns: string, obj: Obj): { status: number; body: Obj } {
    const meta = { ...((obj.metadata ?? {}) as Obj) };
    const name = String(meta.name ?? '');
    const store = this.#objects.get(this.#storage(r)) ?? new Map<string, Obj>();
    this.#objects.set(this.#storage(r), store);
    if (store.has(`${ns}/${name}`)) return status(409, 'AlreadyExists', `${r.plural} "${name}" already exists`);
    const rv = ++this.#rv;
    const stored: Obj = {
      ...clone(obj),
      kind: r.kind,
      apiVersion: gv(r),
      metadata: {
        ...meta,
        ...(r.namespaced ? { namespace: ns } : {}),
        uid: randomUUID(),
        resourceVersion: String(rv),
        generation: 1,
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      },
    };
    store.set(`${ns}/${name}`, stored);
    this.#emit(r, 'ADDED', stored);
    return { status: 201, body: clone(stored) };
  }

  #replace(
    r: Resource,
    ns: string,
    name: string,
    obj: Obj,
    statusOnly: boolean,
    force = false,
  ): { status: number; body: Obj } {
    const store = this.#objects.get(this.#storage(r));
    const old = store?.get(`${ns}/${name}`);
    if (store === undefined || old === undefined) return status(404, 'NotFound', `${r.plural} "${name}" not found`);
    const oldMeta = old.metadata as Obj;
    const newMeta = (obj.metadata ?? {}) as Obj;
    if (!force && newMeta.resourceVersion !== undefined && newMeta.resourceVersion !== oldMeta.resourceVersion) {
      return status(409, 'Conflict', `the object has been modified; please apply your changes to the latest version`);
    }
    const rv = ++this.#rv;
    const specChanged = !statusOnly && JSON.stringify(obj.spec) !== JSON.stringify(old.spec);
    const next: Obj = statusOnly
      ? { ...clone(old), status: clone(obj.status) }
      : { ...clone(obj), kind: r.kind, apiVersion: gv(r), status: obj.status ?? old.status };
    next.metadata = {
      ...(statusOnly ? oldMeta : { ...newMeta }),
      ...(r.namespaced ? { namespace: ns } : {}),
      name,
      uid: oldMeta.uid,
      creationTimestamp: oldMeta.creationTimestamp,
      resourceVersion: String(rv),
      generation: Number(oldMeta.generation ?? 1) + (specChanged ? 1 : 0),
    };
    store.set(`${ns}/${name}`, next);
    this.#emit(r, 'MODIFIED', next);
    return { status: 200, body: clone(next) };
  }

  #delete(r: Resource, ns: string, name: string): { status: number; body: Obj } {
    const store = this.#objects.get(this.#storage(r));
    const old = store?.get(`${ns}/${name}`);
    if (store === undefined || old === undefined) return status(404, 'NotFound', `${r.plural} "${name}" not found`);
    store.delete(`${ns}/${name}`);
    const gone = { ...old, metadata: { ...(old.metadata as Obj), resourceVersion: String(++this.#rv) } };
    this.#emit(r, 'DELETED', gone);
    return { status: 200, body: gone };
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length === 0 ? null : (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Obj);
      const url = new URL(req.url ?? '/', 'http://x');
      const out = this.#route(req, res, url, body);
      if (out === null) return; // a watch: the response stays open
      if (req.method !== 'GET') this.writes.push(`${req.method} ${url.pathname}`);
      res.writeHead(out.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out.body));
    });
  }

  #route(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    body: Obj | null,
  ): { status: number; body: Obj } | null {
    const p = url.pathname.split('/').filter((s) => s !== '');
    if (url.pathname === '/api') return { status: 200, body: { kind: 'APIVersions', versions: ['v1'] } };
    if (url.pathname === '/apis') return { status: 200, body: this.#groups() };
    // /api/v1/... or /apis/<group>/<version>/...
    const [group, version, rest] = p[0] === 'api' ? ['', p[1] ?? '', p.slice(2)] : [p[1] ?? '', p[2] ?? '', p.slice(3)];
    if (rest.length === 0) return this.#resourceList(group, version);
    let ns: string | null = null;
    let i = 0;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      ns = rest[1] ?? '';
      i = 2;
    }
    const r = this.#resources.get(`${group === '' ? version : `${group}/${version}`}/${rest[i]}`);
    if (r === undefined) return status(404, 'NotFound', `the server could not find the requested resource`);
    const name = rest[i + 1];
    const sub = rest[i + 2];
    const nsKey = r.namespaced ? (ns ?? '') : '';
    const method = req.method ?? 'GET';
    if (name === undefined) {
      if (method === 'POST' && body !== null) return this.#create(r, ns ?? 'default', body);
      if (url.searchParams.get('watch') === 'true') {
        this.#watch(r, ns, Number(url.searchParams.get('resourceVersion') || '0'), res);
        return null;
      }
      if (this.#oldestRv > this.#rv) this.#oldestRv = this.#rv; // a list's resourceVersion is always resumable
      const items = [...(this.#objects.get(this.#storage(r))?.values() ?? [])]
        .filter((o) => ns === null || (o.metadata as Obj).namespace === ns)
        .map((o) => ({ ...o, kind: undefined, apiVersion: undefined }));
      return {
        status: 200,
        body: { kind: `${r.kind}List`, apiVersion: gv(r), metadata: { resourceVersion: String(this.#rv) }, items },
      };
    }
    if (name === undefined) return status(405, 'MethodNotAllowed', 'method not allowed');
    const current = this.#objects.get(this.#storage(r))?.get(`${nsKey}/${name}`);
    switch (method) {
      case 'GET':
        return current === undefined
          ? status(404, 'NotFound', `${r.plural} "${name}" not found`)
          : { status: 200, body: { ...current, apiVersion: gv(r) } };
      case 'PUT':
        return this.#replace(r, nsKey, name, body ?? {}, sub === 'status');
      case 'PATCH': {
        if (current === undefined) return status(404, 'NotFound', `${r.plural} "${name}" not found`);
        const merged = mergePatch(clone(current), body ?? {}) as Obj;
        return this.#replace(
          r,
          nsKey,
          name,
          merged,
          sub === 'status',
          (body?.metadata as Obj | undefined)?.resourceVersion === undefined,
        );
      }
      case 'DELETE':
        return this.#delete(r, nsKey, name);
      default:
        return status(405, 'MethodNotAllowed', 'method not allowed');
    }
  }

  #watch(r: Resource, ns: string | null, fromRv: number, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const w: Watcher = { resource: this.#storage(r), namespace: ns, res };
    if (fromRv !== 0 && fromRv < this.#oldestRv) {
      res.end(
        `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: `too old resource version: ${fromRv} (${this.#oldestRv})` } })}\n`,
      );
      return;
    }
    for (const e of this.#events) {
      if (e.rv > fromRv && e.resource === w.resource && (ns === null || (e.object.metadata as Obj).namespace === ns))
        this.#send(w, e.type, r, e.object);
    }
    this.#watchers.add(w);
    res.on('close', () => this.#watchers.delete(w));
  }

  #groups(): Obj {
    const groups = new Map<string, Set<string>>();
    for (const r of this.#resources.values()) {
      if (r.group === '') continue;
      const set = groups.get(r.group) ?? new Set<string>();
      set.add(r.version);
      groups.set(r.group, set);
    }
    return {
      kind: 'APIGroupList',
      groups: [...groups].map(([name, versions]) => ({
        name,
        versions: [...versions].map((version) => ({ groupVersion: `${name}/${version}`, version })),
      })),
    };
  }

  #resourceList(group: string, version: string): { status: number; body: Obj } {
    const resources = [...this.#resources.values()]
      .filter((r) => r.group === group && r.version === version)
      .map((r) => ({ name: r.plural, kind: r.kind, namespaced: r.namespaced, verbs: ['get', 'list', 'watch'] }));
    if (resources.length === 0) return status(404, 'NotFound', 'the server could not find the requested resource');
    return {
      status: 200,
      body: { kind: 'APIResourceList', groupVersion: group === '' ? version : `${group}/${version}`, resources },
    };
  }
}

function status(code: number, reason: string, message: string): { status: number; body: Obj } {
  return { status: code, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message } };
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Obj =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Obj) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
