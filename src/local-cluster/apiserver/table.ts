// Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`): kubectl get asks for a
// meta.k8s.io/v1 Table and prints its columns, as the real server's printers define them for the kinds here
// (pods: ready/status/restarts, services: type/cluster-ip/ports, deployments: ready/up-to-date/available).
// Rows carry the object's metadata (PartialObjectMetadata) so kubectl can add the NAMESPACE column. Pure.
import { isObj, metaOf, type Obj, own } from './json.ts';
import type { ResourceType } from './resources.ts';

export function wantsTable(accept: string | undefined): boolean {
  return accept !== undefined && /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept);
}

interface Column {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'date';
  readonly format?: string;
  readonly priority?: number;
  readonly cell: (o: Obj, now: number) => string | number;
}

const name: Column = {
  name: 'Name',
  type: 'string',
  format: 'name',
  cell: (o) => String(own(metaOf(o), 'name') ?? ''),
};
const age: Column = {
  name: 'Age',
  type: 'string',
  cell: (o, now) => ageOf(String(own(metaOf(o), 'creationTimestamp') ?? ''), now),
};
const at = (o: Obj, ...path: string[]): unknown => {
  let cur: unknown = o;
  for (const p of path) cur = isObj(cur) ? own(cur, p) : undefined;
  return cur;
};
const str = (v: unknown, dflt = '<none>'): string =>
  typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : dflt;
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

const COLUMNS: Readonly<Record<string, readonly Column[]>> = {
  Pod: [
    name,
    {
      name: 'Ready',
      type: 'string',
      cell: (o) =>
        `${list(at(o, 'status', 'containerStatuses')).filter((c) => isObj(c) && c.ready === true).length}/${list(at(o, 'spec', 'containers')).length}`,
    },
    {
      name: 'Status',
      type: 'string',
      // As kubectl shows it: a pod marked for deletion is Terminating whatever its phase.
      cell: (o) =>
        at(o, 'metadata', 'deletionTimestamp') !== undefined ? 'Terminating' : str(at(o, 'status', 'phase'), 'Pending'),
    },
    {
      name: 'Restarts',
      type: 'integer',
      cell: (o) =>
        list(at(o, 'status', 'containerStatuses')).reduce<number>(
          (n, c) => n + (isObj(c) && typeof c.restartCount === 'number' ? c.restartCount : 0),
          0,
        ),
    },
    age,
    { name: 'IP', type: 'string', priority: 1, cell: (o) => str(at(o, 'status', 'podIP')) },
    { name: 'Node', type: 'string', priority: 1, cell: (o) => str(at(o, 'spec', 'nodeName')) },
  ],
  Service: [
    name,
    { name: 'Type', type: 'string', cell: (o) => str(at(o, 'spec', 'type'), 'ClusterIP') },
    { name: 'Cluster-IP', type: 'string', cell: (o) => str(at(o, 'spec', 'clusterIP')) },
    { name: 'External-IP', type: 'string', cell: () => '<none>' },
    {
      name: 'Port(s)',
      type: 'string',
      cell: (o) =>
        list(at(o, 'spec', 'ports'))
          .map((p) => (isObj(p) ? `${String(p.port)}/${str(p.protocol, 'TCP')}` : '?'))
          .join(',') || '<none>',
    },
    age,
    { name: 'Selector', type: 'string', priority: 1, cell: (o) => selectorText(at(o, 'spec', 'selector')) },
  ],
  Deployment: [
    name,
    {
      name: 'Ready',
      type: 'string',
      cell: (o) => `${Number(at(o, 'status', 'readyReplicas') ?? 0)}/${Number(at(o, 'spec', 'replicas') ?? 1)}`,
    },
    { name: 'Up-to-date', type: 'integer', cell: (o) => Number(at(o, 'status', 'updatedReplicas') ?? 0) },
    { name: 'Available', type: 'integer', cell: (o) => Number(at(o, 'status', 'availableReplicas') ?? 0) },
    age,
  ],
  Namespace: [name, { name: 'Status', type: 'string', cell: (o) => str(at(o, 'status', 'phase'), 'Active') }, age],
  ReplicaSet: [
    name,
    { name: 'Desired', type: 'integer', cell: (o) => Number(at(o, 'spec', 'replicas') ?? 1) },
    { name: 'Current', type: 'integer', cell: (o) => Number(at(o, 'status', 'replicas') ?? 0) },
    { name: 'Ready', type: 'integer', cell: (o) => Number(at(o, 'status', 'readyReplicas') ?? 0) },
    age,
  ],
  DaemonSet: [
    name,
    { name: 'Desired', type: 'integer', cell: (o) => Number(at(o, 'status', 'desiredNumberScheduled') ?? 0) },
    { name: 'Current', type: 'integer', cell: (o) => Number(at(o, 'status', 'currentNumberScheduled') ?? 0) },
    { name: 'Ready', type: 'integer', cell: (o) => Number(at(o, 'status', 'numberReady') ?? 0) },
    { name: 'Up-to-date', type: 'integer', cell: (o) => Number(at(o, 'status', 'updatedNumberScheduled') ?? 0) },
    { name: 'Available', type: 'integer', cell: (o) => Number(at(o, 'status', 'numberAvailable') ?? 0) },
    age,
  ],
  Node: [name, { name: 'Status', type: 'string', cell: (o) => nodeStatus(o) }, age],
  Lease: [name, { name: 'Holder', type: 'string', cell: (o) => str(at(o, 'spec', 'holderIdentity'), '') }, age],
};

// A Node without conditions (registered by hand, or a test) reads Ready, as before there was a kubelet.
function nodeStatus(o: Obj): string {
  const ready = list(at(o, 'status', 'conditions')).find((c) => isObj(c) && c.type === 'Ready');
  if (!isObj(ready)) return 'Ready';
  return ready.status === 'True' ? 'Ready' : 'NotReady';
}

function selectorText(v: unknown): string {
  return isObj(v) && Object.keys(v).length > 0
    ? Object.entries(v)
        .map(([k, x]) => `${k}=${String(x)}`)
        .join(',')
    : '<none>';
}

function ageOf(ts: string, now: number): string {
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return '<unknown>';
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function partial(o: Obj): Obj {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: metaOf(o) };
}

export interface TableOptions {
  /** includeObject: None | Metadata (default) | Object */
  readonly includeObject: string | null;
  /** Column definitions are sent only in the first Table of a watch. */
  readonly withColumns: boolean;
}

/** A Table for a single object or a list (the list's resourceVersion is kept). */
export function asTable(
  t: ResourceType,
  body: unknown,
  opts: TableOptions = { includeObject: null, withColumns: true },
): object {
  const columns = COLUMNS[t.kind] ?? [name, age];
  const now = Date.now();
  const isList = isObj(body) && Array.isArray(body.items);
  const items = isList ? ((body as Obj).items as Obj[]) : isObj(body) ? [body] : [];
  const rows = items.map((o) => ({
    cells: columns.map((c) => c.cell(o, now)),
    ...(opts.includeObject === 'None' ? {} : { object: opts.includeObject === 'Object' ? o : partial(o) }),
  }));
  const metadata = isList
    ? { resourceVersion: String(own(metaOf(body as Obj), 'resourceVersion') ?? '') }
    : { resourceVersion: String(own(metaOf(items[0] ?? {}), 'resourceVersion') ?? '') };
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata,
    columnDefinitions: opts.withColumns
      ? columns.map((c) => ({
          name: c.name,
          type: c.type,
          format: c.format ?? '',
          description: c.name,
          priority: c.priority ?? 0,
        }))
      : [],
    rows,
  };
}
