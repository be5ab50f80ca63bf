// How the server turns a client's object into the stored one: server-owned metadata (uid,
// creationTimestamp, generation; resourceVersion is the store's), status handling for kinds with a status
// subresource, defaults the real server applies that Ferry and kubectl read (namespace name label, pod phase,
// deployment replicas, service clusterIP, CRD conditions). Pure apart from the uid/name randomness and the
// clock, which are passed in.
import { deepEqual, isObj, metaOf, type Obj, own } from './json.ts';
import type { ResourceType } from './resources.ts';
import { badRequest } from './status.ts';

export interface Stamp {
  readonly uid: string;
  readonly now: Date;
}

/** RFC 3339 with second precision, as Kubernetes writes metav1.Time. */
export function k8sTime(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

const SERVER_META = [
  'uid',
  'creationTimestamp',
  'generation',
  'resourceVersion',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'selfLink',
  'managedFields',
];

/** The object to store for a create: the client's fields plus server metadata; status reset where owned. */
export function prepareCreate(t: ResourceType, body: Obj, namespace: string, name: string, stamp: Stamp): Obj {
  const meta: Obj = { ...metaOf(body) };
  for (const k of SERVER_META) delete meta[k];
  meta.name = name;
  if (t.namespaced) meta.namespace = namespace;
  else delete meta.namespace;
  meta.uid = stamp.uid;
  meta.creationTimestamp = k8sTime(stamp.now);
  meta.generation = 1;
  const out: Obj = { ...body, apiVersion: apiVersionString(t), kind: t.kind, metadata: meta };
  if (t.statusSubresource) delete out.status;
  return withDefaults(t, out);
}

/**
 * The object to store for an update of `existing` with `incoming` (a PUT body or a patched copy), or for a
 * /status write. Identity fields always come from `existing`; generation counts spec changes.
 */
export function prepareUpdate(t: ResourceType, existing: Obj, incoming: Obj, subresource: 'status' | null): Obj {
  const old = metaOf(existing);
  let out: Obj;
  if (subresource === 'status') {
    // Only status changes through /status (the real server also resets metadata to the stored one).
    out = { ...existing };
    if (own(incoming, 'status') === undefined) delete out.status;
    else out.status = own(incoming, 'status');
  } else {
    const meta: Obj = { ...metaOf(incoming) };
    for (const k of SERVER_META)
      if (Object.hasOwn(old, k)) meta[k] = old[k];
      else delete meta[k];
    meta.name = own(old, 'name');
    if (t.namespaced) meta.namespace = own(old, 'namespace');
    out = { ...incoming, apiVersion: apiVersionString(t), kind: t.kind, metadata: meta };
    if (t.statusSubresource) {
      if (own(existing, 'status') === undefined) delete out.status;
      else out.status = own(existing, 'status');
    }
  }
  out = withDefaults(t, out);
  const prevGen = own(old, 'generation');
  const gen = typeof prevGen === 'number' ? prevGen : 1;
  (out.metadata as Obj).generation = specChanged(existing, out) ? gen + 1 : gen;
  return out;
}

function apiVersionString(t: ResourceType): string {
  return t.group === '' ? t.version : `${t.group}/${t.version}`;
}

// Generation counts changes to everything but metadata and status (spec, and top-level data of kinds
// without a spec), as the real server does for CRs and most built-ins.
function specChanged(a: Obj, b: Obj): boolean {
  const strip = (o: Obj): Obj => {
    const c = { ...o };
    delete c.metadata;
    delete c.status;
    delete c.apiVersion;
    delete c.kind;
    return c;
  };
  return !deepEqual(strip(a), strip(b));
}

/** Whether storing `next` over `prev` would change nothing (then no new resourceVersion, no event). */
export function isNoop(prev: Obj, next: Obj): boolean {
  const strip = (o: Obj): Obj => {
    const metadata = { ...metaOf(o) };
    delete metadata.resourceVersion;
    return { ...o, metadata };
  };
  return deepEqual(strip(prev), strip(next));
}

function withDefaults(t: ResourceType, o: Obj): Obj {
  if (t.custom) return o;
  switch (t.kind) {
    case 'Namespace': {
      const meta = metaOf(o);
      const labels = isObj(meta.labels) ? meta.labels : {};
      // Set by the real server on every namespace (immutable); Istio selects namespaces by it.
      return {
        ...o,
        metadata: { ...meta, labels: { ...labels, 'kubernetes.io/metadata.name': meta.name } },
        status: isObj(o.status) ? o.status : { phase: 'Active' },
      };
    }
    case 'Pod':
      return isObj(o.status) ? o : { ...o, status: { phase: 'Pending' } };
    case 'Deployment':
    case 'ReplicaSet': {
      const spec = isObj(o.spec) ? o.spec : {};
      return spec.replicas === undefined || spec.replicas === null ? { ...o, spec: { ...spec, replicas: 1 } } : o;
    }
    case 'DaemonSet': {
      // `kubectl rollout status daemonset` refuses anything but an explicit RollingUpdate strategy.
      const spec = isObj(o.spec) ? o.spec : {};
      if (isObj(spec.updateStrategy) && typeof spec.updateStrategy.type === 'string') return o;
      const updateStrategy = { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } };
      return { ...o, spec: { ...spec, updateStrategy } };
    }
    case 'CustomResourceDefinition':
      return { ...o, status: crdStatus(o) };
    case 'Secret': {
      // stringData is write-only: the real server folds it into data (base64) and never returns it.
      const stringData = isObj(o.stringData) ? o.stringData : {};
      const data: Obj = isObj(o.data) ? { ...o.data } : {};
      for (const [k, v] of Object.entries(stringData))
        if (typeof v === 'string') data[k] = Buffer.from(v).toString('base64');
      const out: Obj = { ...o, type: typeof o.type === 'string' ? o.type : 'Opaque' };
      delete out.stringData;
      if (Object.keys(data).length > 0) out.data = data;
      return out;
    }
    default:
      return o;
  }
}

function crdStatus(o: Obj): Obj {
  const spec = isObj(o.spec) ? o.spec : {};
  const versions = Array.isArray(spec.versions) ? spec.versions : [];
  const storage = versions.find((v) => isObj(v) && v.storage === true);
  const time = k8sTime(new Date(String(own(metaOf(o), 'creationTimestamp') ?? new Date().toISOString())));
  return {
    acceptedNames: isObj(spec.names) ? spec.names : {},
    conditions: [
      {
        type: 'NamesAccepted',
        status: 'True',
        reason: 'NoConflicts',
        message: 'no conflicts found',
        lastTransitionTime: time,
      },
      {
        type: 'Established',
        status: 'True',
        reason: 'InitialNamesAccepted',
        message: 'the initial names have been accepted',
        lastTransitionTime: time,
      },
    ],
    storedVersions: isObj(storage) && typeof storage.name === 'string' ? [storage.name] : [],
  };
}

/** Name of a new object: metadata.name, else generateName plus 5 random characters (as the real server). */
export function nameForCreate(body: Obj, random: () => string): string {
  const meta = metaOf(body);
  const name = own(meta, 'name');
  if (typeof name === 'string' && name !== '') return name;
  const prefix = own(meta, 'generateName');
  if (typeof prefix === 'string' && prefix !== '') return `${prefix}${random()}`;
  throw badRequest('name or generateName is required');
}

const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789'; // the real server's: no vowels, no look-alikes

export function randomSuffix(bytes: Uint8Array): string {
  return [...bytes.slice(0, 5)].map((b) => NAME_ALPHABET[b % NAME_ALPHABET.length]).join('');
}

/** A free ClusterIP for a new Service in `cidr` (a.b.c.d/n), or null when the range is full. */
export function allocateClusterIp(cidr: string, taken: ReadonlySet<string>): string | null {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (m === null) return null;
  const base = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
  const size = 2 ** (32 - Number(m[5]));
  for (let i = 10; i < size - 1; i++) {
    const n = (base + i) >>> 0;
    const ip = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
    if (!taken.has(ip)) return ip;
  }
  return null;
}
