// The node agent's view of a Pod and a Namespace, parsed once from the API's raw JSON (wire types stop at
// the edge). Only the fields enrollment reads; anything malformed is refused here (null), never guessed.
import { isJson, type Json } from '../../kube/client.ts';

export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

export interface NodePod {
  /** metadata.uid: names the pod's cgroup on the host. */
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly nodeName: string;
  readonly labels: ReadonlyMap<string, string>;
  readonly annotations: ReadonlyMap<string, string>;
  readonly containerNames: readonly string[];
  readonly hostNetwork: boolean;
  /** status.phase ('' before the kubelet reported one). */
  readonly phase: string;
  /** metadata.deletionTimestamp is set: the pod is terminating. */
  readonly deleting: boolean;
  /** status.qosClass; null before the kubelet reported it (the locator then tries every class). */
  readonly qosClass: QosClass | null;
  /** Ids of the pod's app containers (status.*containerStatuses[].containerID without `<runtime>://`). */
  readonly containerIds: ReadonlySet<string>;
}

const QOS_CLASSES: ReadonlySet<string> = new Set(['Guaranteed', 'Burstable', 'BestEffort']);

/** A Pod from the API, or null when the fields enrollment needs are missing or malformed. */
export function parseNodePod(obj: Json): NodePod | null {
  const meta = isJson(obj.metadata) ? obj.metadata : null;
  const spec = isJson(obj.spec) ? obj.spec : {};
  const status = isJson(obj.status) ? obj.status : {};
  if (meta === null) return null;
  const { uid, namespace, name } = meta;
  if (typeof uid !== 'string' || typeof namespace !== 'string' || typeof name !== 'string') return null;
  if (uid === '' || namespace === '' || name === '') return null;
  const containers = Array.isArray(spec.containers) ? spec.containers : [];
  const qos = status.qosClass;
  return {
    uid,
    namespace,
    name,
    nodeName: typeof spec.nodeName === 'string' ? spec.nodeName : '',
    labels: stringMap(meta.labels),
    annotations: stringMap(meta.annotations),
    containerNames: containers.flatMap((c) => (isJson(c) && typeof c.name === 'string' ? [c.name] : [])),
    hostNetwork: spec.hostNetwork === true,
    phase: typeof status.phase === 'string' ? status.phase : '',
    deleting: typeof meta.deletionTimestamp === 'string' && meta.deletionTimestamp !== '',
    qosClass: typeof qos === 'string' && QOS_CLASSES.has(qos) ? (qos as QosClass) : null,
    containerIds: containerIds(status),
  };
}

/** Key of a pod in the agent's tables (an object's identity across updates). */
export function podKey(obj: { readonly namespace: string; readonly name: string }): string {
  return `${obj.namespace}/${obj.name}`;
}

/** metadata.labels of a Namespace object ({} when it has none). */
export function namespaceLabels(obj: Json): { name: string; labels: ReadonlyMap<string, string> } | null {
  const meta = isJson(obj.metadata) ? obj.metadata : null;
  if (meta === null || typeof meta.name !== 'string' || meta.name === '') return null;
  return { name: meta.name, labels: stringMap(meta.labels) };
}

function stringMap(v: unknown): ReadonlyMap<string, string> {
  if (!isJson(v)) return new Map();
  return new Map(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

function containerIds(status: Json): ReadonlySet<string> {
  const ids = new Set<string>();
  for (const key of ['containerStatuses', 'initContainerStatuses', 'ephemeralContainerStatuses']) {
    const list = status[key];
    if (!Array.isArray(list)) continue;
    for (const s of list) {
      const id = isJson(s) && typeof s.containerID === 'string' ? s.containerID : '';
      const at = id.indexOf('://');
      if (at > 0 && at + 3 < id.length) ids.add(id.slice(at + 3));
    }
  }
  return ids;
}
