// The REST verbs on stored objects: create, get, list, update (PUT), patch, delete, deletecollection, and the
// /status and /scale subresources. Each write is read-modify-commit with no await in between, so it is atomic
// against other requests (one event loop); conflicts are decided on resourceVersion as the real server does.
import { randomBytes, randomUUID } from 'node:crypto';
import { isObj, metaOf, type Obj, own } from './json.ts';
import {
  allocateClusterIp,
  isNoop,
  k8sTime,
  nameForCreate,
  prepareCreate,
  prepareUpdate,
  randomSuffix,
} from './objects.ts';
import { dependentDeletions, type OwnedObject, orphansDependents } from './owner-references.ts';
import { applyJsonPatch, applyMergePatch, PatchError } from './patch.ts';
import { apiVersionOf, qualifiedName, type ResourceRegistry, type ResourceType, storageKeyOf } from './resources.ts';
import {
  type FieldRequirement,
  type LabelRequirement,
  matchesFieldRequirements,
  matchesLabelRequirements,
  parseFieldSelector,
  parseLabelSelector,
} from './selectors.ts';
import { alreadyExists, badRequest, conflict, failure, invalid, notFound } from './status.ts';
import type { Change, ObjectStore } from './store.ts';
import { applyStrategicMergePatch } from './strategic-merge.ts';
import { validateObject } from './validation.ts';

export interface Reply {
  readonly code: number;
  readonly body: unknown;
}

export interface HandlerDeps {
  readonly store: ObjectStore;
  readonly registry: ResourceRegistry;
  /** Service ClusterIPs are allocated from here when a Service has none. */
  readonly serviceCidr: string;
  readonly now?: () => Date;
  /** Called when a namespace starts terminating; the server finishes it later (finalizeNamespace). */
  readonly onNamespaceTerminating?: (name: string) => void;
  /**
   * Pods bound to a node are deleted gracefully (marked; the kubelet removes them). Only where kubelets run
   * (`ferry up --bare`): without one a marked pod would stay forever.
   */
  readonly gracefulPodDeletion?: boolean;
  /**
   * A mutating step on pod CREATE (as an admission webhook: sidecar injection, sidecar-admission.ts), given
   * the pod as prepared for storage and its namespace's labels; its result is validated and stored.
   */
  readonly admitPod?: (pod: Obj, namespace: string, namespaceLabels: Readonly<Record<string, string>>) => Obj;
}

export type PatchType = 'merge' | 'strategic' | 'json' | 'apply';

export interface Selection {
  readonly labels: readonly LabelRequirement[];
  readonly fields: readonly FieldRequirement[];
}

const NAMESPACES = '/namespaces';
const PODS = '/pods';
const CRDS = 'apiextensions.k8s.io/customresourcedefinitions';

/** Parses ?labelSelector= and ?fieldSelector= (400 on a bad one). */
export function parseSelection(query: URLSearchParams, t: ResourceType): Selection {
  const labels = parseLabelSelector(query.get('labelSelector') ?? '');
  if (!labels.ok) throw badRequest(`unable to parse requirement: ${labels.error}`);
  const fields = parseFieldSelector(query.get('fieldSelector') ?? '', t.kind);
  if (!fields.ok) throw badRequest(fields.error);
  return { labels: labels.value, fields: fields.value };
}

export function selects(sel: Selection, o: Obj): boolean {
  const labels = own(metaOf(o), 'labels');
  return matchesLabelRequirements(sel.labels, isObj(labels) ? labels : {}) && matchesFieldRequirements(sel.fields, o);
}

/** The object as version `t.version` shows it (custom resources are stored once for all versions). */
export function present(t: ResourceType, o: Obj): Obj {
  const v = apiVersionOf(t);
  return o.apiVersion === v ? o : { ...o, apiVersion: v };
}

export class Handlers {
  readonly #d: HandlerDeps;
  constructor(deps: HandlerDeps) {
    this.#d = deps;
  }

  #now(): Date {
    return this.#d.now?.() ?? new Date();
  }

  get(t: ResourceType, ns: string, name: string): Reply {
    return { code: 200, body: present(t, this.#mustGet(t, ns, name)) };
  }

  list(t: ResourceType, ns: string, query: URLSearchParams): Reply {
    const sel = parseSelection(query, t);
    const store = this.#d.store;
    const items = store
      .list(storageKeyOf(t), t.namespaced && ns !== '' ? ns : undefined)
      .filter((o) => selects(sel, o));
    return {
      code: 200,
      body: {
        apiVersion: apiVersionOf(t),
        kind: t.listKind,
        metadata: { resourceVersion: String(store.resourceVersion) },
        items: items.map((o) => present(t, o)),
      },
    };
  }

  async create(t: ResourceType, ns: string, body: unknown, dryRun: boolean): Promise<Reply> {
    const obj = this.#checkBody(t, body, ns);
    const name = nameForCreate(obj, () => randomSuffix(randomBytes(5)));
    const skey = storageKeyOf(t);
    if (t.namespaced) this.#mustHaveNamespace(ns);
    if (this.#d.store.get(skey, t.namespaced ? ns : '', name) !== undefined) {
      throw alreadyExists(qualifiedName(t), name, t.group, t.resource);
    }
    let stored = prepareCreate(t, obj, ns, name, { uid: randomUUID(), now: this.#now() });
    if (t.kind === 'Service' && t.group === '') stored = this.#withClusterIp(stored);
    if (t.kind === 'Pod' && t.group === '' && this.#d.admitPod !== undefined) {
      stored = this.#d.admitPod(stored, ns, this.#namespaceLabels(ns));
    }
    this.#validate(t, stored, name);
    if (dryRun) return { code: 201, body: present(t, stored) };
    const [event] = await this.#d.store.commit([{ op: 'put', skey, object: stored }]);
    return { code: 201, body: present(t, event?.object ?? stored) };
  }

  async update(
    t: ResourceType,
    ns: string,
    name: string,
    body: unknown,
    sub: 'status' | null,
    dryRun: boolean,
  ): Promise<Reply> {
    const obj = this.#checkBody(t, body, t.namespaced ? ns : '');
    const bodyName = own(metaOf(obj), 'name');
    if (bodyName !== undefined && bodyName !== name) {
      throw badRequest(`the name of the object (${String(bodyName)}) does not match the name on the URL (${name})`);
    }
    const existing = this.#mustGet(t, ns, name);
    return this.#write(t, existing, obj, sub, dryRun);
  }

  async patch(
    t: ResourceType,
    ns: string,
    name: string,
    patch: unknown,
    type: PatchType,
    sub: 'status' | null,
    dryRun: boolean,
  ): Promise<Reply> {
    const existing = this.#mustGet(t, ns, name);
    const patched = applyPatch(t, existing, patch, type);
    if (!isObj(patched))
      throw invalid(t.kind, t.group, name, [
        { reason: 'FieldValueInvalid', field: '', message: 'the patched document is not an object' },
      ]);
    const pm = metaOf(patched);
    if (own(pm, 'name') !== name) throw badRequest('a patch cannot change metadata.name');
    return this.#write(t, existing, patched, sub, dryRun);
  }

  async #write(t: ResourceType, existing: Obj, incoming: Obj, sub: 'status' | null, dryRun: boolean): Promise<Reply> {
    const name = String(own(metaOf(existing), 'name'));
    const wantRv = own(metaOf(incoming), 'resourceVersion');
    if (
      wantRv !== undefined &&
      wantRv !== null &&
      wantRv !== '' &&
      wantRv !== own(metaOf(existing), 'resourceVersion')
    ) {
      throw conflict(
        qualifiedName(t),
        name,
        t.group,
        t.resource,
        'the object has been modified; please apply your changes to the latest version and try again',
      );
    }
    const next = prepareUpdate(t, existing, incoming, sub);
    this.#validate(t, next, name);
    if (isNoop(existing, next) || dryRun)
      return { code: 200, body: present(t, isNoop(existing, next) ? existing : next) };
    const [event] = await this.#d.store.commit([{ op: 'put', skey: storageKeyOf(t), object: next }]);
    return { code: 200, body: present(t, event?.object ?? next) };
  }

  async delete(t: ResourceType, ns: string, name: string, options: unknown, dryRun: boolean): Promise<Reply> {
    const existing = this.#mustGet(t, ns, name);
    const pre = isObj(options) && isObj(options.preconditions) ? options.preconditions : {};
    const meta = metaOf(existing);
    if (typeof pre.uid === 'string' && pre.uid !== own(meta, 'uid')) {
      throw conflict(
        qualifiedName(t),
        name,
        t.group,
        t.resource,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(own(meta, 'uid'))}`,
      );
    }
    if (typeof pre.resourceVersion === 'string' && pre.resourceVersion !== own(meta, 'resourceVersion')) {
      throw conflict(
        qualifiedName(t),
        name,
        t.group,
        t.resource,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${String(own(meta, 'resourceVersion'))}`,
      );
    }
    if (dryRun) return { code: 200, body: present(t, existing) };
    if (storageKeyOf(t) === NAMESPACES) return this.#terminateNamespace(t, existing);
    const graceful = storageKeyOf(t) === PODS && this.#d.gracefulPodDeletion === true;
    const graceSeconds = graceful ? podGraceSeconds(existing, options) : 0;
    if (graceSeconds > 0) return this.#terminatePod(t, existing, graceSeconds);
    const changes: Change[] = [
      ...this.#cascade(t, existing),
      ...this.#dependents([{ skey: storageKeyOf(t), object: existing }], options),
      { op: 'delete', skey: storageKeyOf(t), namespace: t.namespaced ? ns : '', name },
    ];
    const events = await this.#d.store.commit(changes);
    const mine = events[events.length - 1];
    return { code: 200, body: present(t, mine?.object ?? existing) };
  }

  async deleteCollection(
    t: ResourceType,
    ns: string,
    query: URLSearchParams,
    options: unknown,
    dryRun: boolean,
  ): Promise<Reply> {
    const sel = parseSelection(query, t);
    const skey = storageKeyOf(t);
    const victims = this.#d.store.list(skey, t.namespaced && ns !== '' ? ns : undefined).filter((o) => selects(sel, o));
    const changes = this.#dependents(
      victims.map((object) => ({ skey, object })),
      options,
    );
    for (const o of victims) {
      changes.push(...this.#cascade(t, o));
      const m = metaOf(o);
      changes.push({ op: 'delete', skey, namespace: String(own(m, 'namespace') ?? ''), name: String(own(m, 'name')) });
    }
    const events = dryRun ? [] : await this.#d.store.commit(changes);
    const deleted = dryRun ? victims : events.filter((e) => e.skey === skey).map((e) => e.object);
    return {
      code: 200,
      body: {
        apiVersion: apiVersionOf(t),
        kind: t.listKind,
        metadata: { resourceVersion: String(this.#d.store.resourceVersion) },
        items: deleted.map((o) => present(t, o)),
      },
    };
  }

  // Graceful pod deletion, as the real server does it: a pod bound to a node is only marked
  // (deletionTimestamp = now + grace, deletionGracePeriodSeconds); the node's kubelet stops its containers and
  // then deletes it again with grace 0, which removes it. A second delete may only shorten the grace.
  async #terminatePod(t: ResourceType, existing: Obj, graceSeconds: number): Promise<Reply> {
    const meta = metaOf(existing);
    const current = own(meta, 'deletionGracePeriodSeconds');
    if (own(meta, 'deletionTimestamp') !== undefined && typeof current === 'number' && current <= graceSeconds) {
      return { code: 200, body: present(t, existing) };
    }
    const marked: Obj = {
      ...existing,
      metadata: {
        ...meta,
        deletionTimestamp: k8sTime(new Date(this.#now().getTime() + graceSeconds * 1000)),
        deletionGracePeriodSeconds: graceSeconds,
      },
    };
    const [event] = await this.#d.store.commit([{ op: 'put', skey: PODS, object: marked }]);
    return { code: 200, body: present(t, event?.object ?? marked) };
  }

  /** POST pods/NAME/binding (the scheduler): sets spec.nodeName once; 409 when the pod is already bound. */
  async bind(t: ResourceType, ns: string, name: string, body: unknown): Promise<Reply> {
    const pod = this.#mustGet(t, ns, name);
    const target = isObj(body) && isObj(body.target) ? body.target : {};
    const node = target.name;
    if (typeof node !== 'string' || node === '') {
      throw invalid('Binding', '', name, [
        { reason: 'FieldValueRequired', field: 'target.name', message: 'Required value' },
      ]);
    }
    const spec = isObj(pod.spec) ? pod.spec : {};
    if (typeof spec.nodeName === 'string' && spec.nodeName !== '') {
      throw conflict('pods/binding', name, '', 'pods', `pod ${name} is already assigned to node "${spec.nodeName}"`);
    }
    if (own(metaOf(pod), 'deletionTimestamp') !== undefined) {
      throw conflict('pods/binding', name, '', 'pods', `pod ${name} is being deleted, cannot be assigned to a host`);
    }
    const bound: Obj = { ...pod, spec: { ...spec, nodeName: node } };
    await this.#d.store.commit([{ op: 'put', skey: PODS, object: prepareUpdate(t, pod, bound, null) }]);
    return { code: 201, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 } };
  }

  // A namespace is deleted as the real server does it, in two steps: now it becomes Terminating (no new
  // objects in it), and a moment later it goes with all its objects. `kubectl delete -f` deletes a namespace
  // and then the objects in it: they must still be there when the second requests arrive.
  async #terminateNamespace(t: ResourceType, existing: Obj): Promise<Reply> {
    const meta = metaOf(existing);
    const name = String(own(meta, 'name'));
    if (own(meta, 'deletionTimestamp') !== undefined) return { code: 200, body: present(t, existing) };
    const terminating: Obj = {
      ...existing,
      metadata: { ...meta, deletionTimestamp: k8sTime(this.#now()) },
      status: { phase: 'Terminating' },
    };
    const [event] = await this.#d.store.commit([{ op: 'put', skey: NAMESPACES, object: terminating }]);
    this.#d.onNamespaceTerminating?.(name);
    return { code: 200, body: present(t, event?.object ?? terminating) };
  }

  /** Deletes a Terminating namespace and everything in it (one atomic commit). */
  async finalizeNamespace(name: string): Promise<void> {
    const ns = this.#d.store.get(NAMESPACES, '', name);
    if (ns === undefined || own(metaOf(ns), 'deletionTimestamp') === undefined) return;
    const t = this.#d.registry.find('', 'v1', 'namespaces') as ResourceType;
    await this.#d.store.commit([...this.#cascade(t, ns), { op: 'delete', skey: NAMESPACES, namespace: '', name }]);
  }

  /** Names of namespaces left Terminating (by a crash before they were finalized). */
  terminatingNamespaces(): string[] {
    return this.#d.store
      .list(NAMESPACES)
      .filter((o) => own(metaOf(o), 'deletionTimestamp') !== undefined)
      .map((o) => String(own(metaOf(o), 'name')));
  }

  // Objects owned by the deleted ones (ownerReferences), unless the client asked to orphan them.
  #dependents(owners: readonly OwnedObject[], options: unknown): Change[] {
    if (owners.length === 0 || orphansDependents(options) || owners[0]?.skey === NAMESPACES) return [];
    return dependentDeletions(this.#d.store, this.#d.registry, owners);
  }

  // Finalizer-free deletion: a namespace takes its objects with it, a CRD its custom resources.
  #cascade(t: ResourceType, o: Obj): Change[] {
    const out: Change[] = [];
    const name = String(own(metaOf(o), 'name'));
    if (storageKeyOf(t) === NAMESPACES) {
      for (const r of this.#d.registry.all()) {
        if (!r.namespaced || r.virtual) continue;
        const skey = storageKeyOf(r);
        if (out.some((c) => c.skey === skey)) continue;
        for (const child of this.#d.store.list(skey, name))
          out.push({ op: 'delete', skey, namespace: name, name: String(own(metaOf(child), 'name')) });
      }
    } else if (storageKeyOf(t) === CRDS) {
      const spec = isObj(o.spec) ? o.spec : {};
      const names = isObj(spec.names) ? spec.names : {};
      const skey = `${String(spec.group)}/${String(names.plural)}`;
      for (const child of this.#d.store.list(skey)) {
        const m = metaOf(child);
        out.push({ op: 'delete', skey, namespace: String(own(m, 'namespace') ?? ''), name: String(own(m, 'name')) });
      }
    }
    return out;
  }

  // ---- /scale (Deployments): autoscaling/v1 Scale over spec.replicas ----

  getScale(t: ResourceType, ns: string, name: string): Reply {
    return { code: 200, body: scaleOf(this.#mustGet(t, ns, name)) };
  }

  async updateScale(
    t: ResourceType,
    ns: string,
    name: string,
    body: unknown,
    patchType: PatchType | null,
    dryRun: boolean,
  ): Promise<Reply> {
    const existing = this.#mustGet(t, ns, name);
    const current = scaleOf(existing);
    const wanted =
      patchType === null ? body : applyPatch(t, current, body, patchType === 'strategic' ? 'merge' : patchType);
    if (!isObj(wanted) || !isObj(wanted.spec)) throw badRequest('expected an autoscaling/v1 Scale with spec.replicas');
    const replicas = wanted.spec.replicas;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      throw invalid('Scale', 'autoscaling', name, [
        {
          reason: 'FieldValueInvalid',
          field: 'spec.replicas',
          message: `Invalid value: ${String(replicas)}: must be greater than or equal to 0`,
        },
      ]);
    }
    const wantRv = own(metaOf(wanted), 'resourceVersion');
    const spec = isObj(existing.spec) ? existing.spec : {};
    const incoming: Obj = {
      ...existing,
      metadata: { ...metaOf(existing), resourceVersion: wantRv ?? own(metaOf(existing), 'resourceVersion') },
      spec: { ...spec, replicas },
    };
    const reply = await this.#write(t, existing, incoming, null, dryRun);
    return { code: 200, body: scaleOf(reply.body as Obj) };
  }

  #mustGet(t: ResourceType, ns: string, name: string): Obj {
    const o = this.#d.store.get(storageKeyOf(t), t.namespaced ? ns : '', name);
    if (o === undefined) throw notFound(qualifiedName(t), name, t.group, t.resource);
    return o;
  }

  #namespaceLabels(ns: string): Record<string, string> {
    const o = this.#d.store.get(NAMESPACES, '', ns);
    const labels = o === undefined ? undefined : own(metaOf(o), 'labels');
    if (!isObj(labels)) return {};
    return Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => typeof e[1] === 'string'));
  }

  #mustHaveNamespace(ns: string): void {
    const o = this.#d.store.get(NAMESPACES, '', ns);
    if (o === undefined) throw notFound('namespaces', ns, '', 'namespaces');
    if (own(metaOf(o), 'deletionTimestamp') !== undefined) {
      throw failure(
        403,
        'Forbidden',
        `unable to create new content in namespace ${ns} because it is being terminated`,
        { name: ns, kind: 'namespaces' },
      );
    }
  }

  // The body must be an object of this resource's kind and version, in the request's namespace.
  #checkBody(t: ResourceType, body: unknown, ns: string): Obj {
    if (!isObj(body)) throw badRequest('the request body must be a JSON or YAML object');
    const kind = own(body, 'kind');
    const apiVersion = own(body, 'apiVersion');
    if (kind !== undefined && kind !== t.kind) {
      throw badRequest(`the kind in the data (${String(kind)}) does not match the expected kind (${t.kind})`);
    }
    if (apiVersion !== undefined && apiVersion !== apiVersionOf(t)) {
      throw badRequest(
        `the API version in the data (${String(apiVersion)}) does not match the expected API version (${apiVersionOf(t)})`,
      );
    }
    const meta = own(body, 'metadata');
    if (meta !== undefined && !isObj(meta)) throw badRequest('metadata must be an object');
    const bodyNs = own(metaOf(body), 'namespace');
    if (t.namespaced && bodyNs !== undefined && bodyNs !== '' && bodyNs !== ns) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    return body;
  }

  #validate(t: ResourceType, o: Obj, name: string): void {
    const causes = validateObject(t, o);
    if (causes.length > 0) throw invalid(t.kind, t.group, name, causes);
  }

  #withClusterIp(svc: Obj): Obj {
    const spec = isObj(svc.spec) ? svc.spec : {};
    if (spec.type === 'ExternalName' || (typeof spec.clusterIP === 'string' && spec.clusterIP !== '')) return svc;
    const taken = new Set<string>();
    for (const s of this.#d.store.list('/services')) {
      const ip = isObj(s.spec) ? s.spec.clusterIP : undefined;
      if (typeof ip === 'string') taken.add(ip);
    }
    const ip = allocateClusterIp(this.#d.serviceCidr, taken);
    if (ip === null) throw failure(500, 'InternalError', `no free ClusterIP left in ${this.#d.serviceCidr}`);
    return { ...svc, spec: { ...spec, clusterIP: ip, clusterIPs: [ip] } };
  }
}

function applyPatch(t: ResourceType, existing: Obj, patch: unknown, type: PatchType): unknown {
  try {
    switch (type) {
      case 'merge':
        return applyMergePatch(existing, patch); // copies what it changes; `existing` stays intact
      case 'json':
        return applyJsonPatch(existing, patch);
      case 'strategic':
        if (t.custom) {
          throw failure(
            415,
            'UnsupportedMediaType',
            'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json (strategic merge patch is not supported for custom resources)',
          );
        }
        return applyStrategicMergePatch(existing, patch, t.kind);
      case 'apply':
        throw failure(
          415,
          'UnsupportedMediaType',
          'server-side apply (application/apply-patch+yaml) is not supported by the Ferry local API server; use client-side `kubectl apply` (the default) or --server-side=false',
        );
    }
  } catch (err) {
    if (err instanceof PatchError) throw failure(422, 'Invalid', `the patch could not be applied: ${err.message}`);
    throw err;
  }
}

/**
 * Seconds of grace for deleting `pod`: the request's gracePeriodSeconds, else the pod's
 * terminationGracePeriodSeconds (default 30). 0 (delete now) for a pod no kubelet runs: unbound, or finished.
 */
export function podGraceSeconds(pod: Obj, options: unknown): number {
  const spec = isObj(pod.spec) ? pod.spec : {};
  const status = isObj(pod.status) ? pod.status : {};
  if (typeof spec.nodeName !== 'string' || spec.nodeName === '') return 0;
  if (status.phase === 'Succeeded' || status.phase === 'Failed') return 0;
  const asked = isObj(options) ? options.gracePeriodSeconds : undefined;
  if (typeof asked === 'number' && Number.isInteger(asked) && asked >= 0) return asked;
  const fromSpec = spec.terminationGracePeriodSeconds;
  return typeof fromSpec === 'number' && Number.isInteger(fromSpec) && fromSpec >= 0 ? fromSpec : 30;
}

function scaleOf(o: Obj): Obj {
  const meta = metaOf(o);
  const spec = isObj(o.spec) ? o.spec : {};
  const status = isObj(o.status) ? o.status : {};
  const selector = isObj(spec.selector) && isObj(spec.selector.matchLabels) ? spec.selector.matchLabels : {};
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: meta.name,
      namespace: meta.namespace,
      uid: meta.uid,
      resourceVersion: meta.resourceVersion,
      creationTimestamp: meta.creationTimestamp,
    },
    spec: { replicas: typeof spec.replicas === 'number' ? spec.replicas : 1 },
    status: {
      replicas: typeof status.replicas === 'number' ? status.replicas : 0,
      selector: Object.entries(selector)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(','),
    },
  };
}
