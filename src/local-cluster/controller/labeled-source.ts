// `ferry label namespace|pod <name> key=value|key-` for the local cluster: a MeshSource that wraps the
// manifest source and lays label overrides over its Namespaces and Pods, the way `kubectl label` changes
// the live object without touching the file. Overrides are committed to the controller's state file before
// they take effect (state-store.ts: a restarted controller keeps them) and survive `ferry apply` of the same
// object (they stay until labelled again). Every change re-emits the whole state, so translation and
// enrollment follow at once; no pod restarts.
import type { ChangeResult, ManifestSource } from '../../controller/sources/manifest-source.ts';
import type {
  ClusterState,
  K8sObject,
  MeshSource,
  NamespaceObject,
  PodObject,
} from '../../controller/sources/types.ts';
import { buildClusterState } from '../../controller/sources/types.ts';
import { LocalControllerError } from './errors.ts';
import type { ControllerStateStore, LabelOverrides } from './state-store.ts';

/** One `key=value` (set) or `key-` (remove). */
export type LabelChange = { readonly key: string; readonly value: string | null };

export interface LabelTarget {
  readonly kind: 'Namespace' | 'Pod';
  /** '' for namespaces. */
  readonly namespace: string;
  readonly name: string;
}

// Kubernetes label syntax: optional DNS-subdomain prefix + '/', name ≤ 63 of [A-Za-z0-9._-] (alnum ends).
const LABEL_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const LABEL_PREFIX = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;

/** Parses `key=value` / `key-` arguments; FERRY_LOCAL_BAD_REQUEST naming the bad one. */
export function parseLabelChanges(args: readonly string[]): LabelChange[] {
  if (args.length === 0) throw badRequest('no label changes given (key=value or key-)');
  return args.map((arg) => {
    const eq = arg.indexOf('=');
    const key = eq === -1 ? (arg.endsWith('-') ? arg.slice(0, -1) : '') : arg.slice(0, eq);
    const value = eq === -1 ? null : arg.slice(eq + 1);
    const slash = key.lastIndexOf('/');
    const prefix = slash === -1 ? null : key.slice(0, slash);
    const name = key.slice(slash + 1);
    if (key === '' || !LABEL_NAME.test(name) || (prefix !== null && !LABEL_PREFIX.test(prefix))) {
      throw badRequest(`label ${JSON.stringify(arg)}: expected key=value or key- with a valid label key`);
    }
    if (value !== null && !LABEL_VALUE.test(value)) throw badRequest(`label ${JSON.stringify(arg)}: invalid value`);
    return { key, value };
  });
}

export function targetRef(t: LabelTarget): string {
  return t.kind === 'Namespace' ? `Namespace/${t.name}` : `Pod/${t.namespace}/${t.name}`;
}

/** Pure: the state with overrides applied (namespaces that only exist through a label are synthesized). */
export function applyLabelOverrides(
  state: ClusterState,
  overrides: ReadonlyMap<string, Readonly<Record<string, string | null>>>,
): ClusterState {
  if (overrides.size === 0) return state;
  const relabel = <T extends K8sObject>(o: T, ref: string): T => {
    const changes = overrides.get(ref);
    if (changes === undefined) return o;
    const labels = new Map(o.metadata.labels);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null) labels.delete(k);
      else labels.set(k, v);
    }
    return { ...o, metadata: { ...o.metadata, labels } };
  };
  const namespaces: NamespaceObject[] = state.namespaces.map((n) => relabel(n, `Namespace/${n.metadata.name}`));
  for (const ref of overrides.keys()) {
    const name = ref.startsWith('Namespace/') ? ref.slice('Namespace/'.length) : null;
    if (name === null || namespaces.some((n) => n.metadata.name === name)) continue;
    namespaces.push(relabel(syntheticNamespace(name), ref));
  }
  const pods: PodObject[] = state.pods.map((p) => relabel(p, `Pod/${p.metadata.namespace}/${p.metadata.name}`));
  return buildClusterState([
    ...namespaces,
    ...pods,
    ...state.deployments,
    ...state.services,
    ...state.serviceAccounts,
    ...state.authorizationPolicies,
    ...state.peerAuthentications,
    ...state.gateways,
    ...state.httpRoutes,
    ...state.grpcRoutes,
    ...state.tcpRoutes,
    ...state.referenceGrants,
    ...state.nodes,
    ...state.endpointSlices,
    ...state.gatewayClasses,
  ]);
}

function syntheticNamespace(name: string): NamespaceObject {
  return {
    kind: 'Namespace',
    apiVersion: 'v1',
    metadata: {
      name,
      namespace: '',
      labels: new Map(),
      annotations: new Map(),
      creationTimestampMs: null,
      sequence: -1,
    },
    origin: { file: 'ferry label', line: null },
  };
}

export class LabeledSource implements MeshSource {
  readonly #inner: ManifestSource;
  readonly #store: ControllerStateStore;
  #onChange: ((state: ClusterState) => void) | null = null;

  /** `store` holds the overrides (its current state) and commits their changes. */
  constructor(inner: ManifestSource, store: ControllerStateStore) {
    this.#inner = inner;
    this.#store = store;
  }

  get #overrides(): LabelOverrides {
    return this.#store.current.labels;
  }

  async start(onChange: (state: ClusterState) => void): Promise<void> {
    this.#onChange = onChange;
    await this.#inner.start((state) => onChange(applyLabelOverrides(state, this.#overrides)));
  }

  state(): ClusterState {
    return applyLabelOverrides(this.#inner.state(), this.#overrides);
  }

  // `ferry apply/delete` are all or nothing: a file with an error leaves the running mesh unchanged.
  apply(paths: readonly string[]): Promise<ChangeResult> {
    return this.#inner.apply(paths, { atomic: true });
  }

  delete(paths: readonly string[]): Promise<ChangeResult> {
    return this.#inner.delete(paths, { atomic: true });
  }

  /** Sets/removes labels on a Namespace or Pod object; FERRY_LOCAL_BAD_REQUEST when it does not exist. */
  async label(target: LabelTarget, changes: readonly LabelChange[]): Promise<Record<string, string>> {
    const state = this.#inner.state();
    const ref = targetRef(target);
    if (
      target.kind === 'Pod' &&
      !state.pods.some((p) => p.metadata.namespace === target.namespace && p.metadata.name === target.name)
    ) {
      const owner = state.deployments.find(
        (d) => d.metadata.namespace === target.namespace && target.name.startsWith(`${d.metadata.name}-`),
      );
      throw badRequest(
        owner === undefined
          ? `no Pod ${target.namespace}/${target.name} in the manifests`
          : `pod ${target.namespace}/${target.name} is a replica of Deployment ${owner.metadata.name}: label its namespace, or change the Deployment's template and ferry apply`,
      );
    }
    // Write-ahead: the overrides take effect (and the CLI hears of them) only once they are durable.
    await this.#store.update((s) => {
      const record = { ...(s.labels.get(ref) ?? {}) };
      for (const c of changes) record[c.key] = c.value;
      return { ...s, labels: new Map(s.labels).set(ref, record) };
    });
    const next = this.state();
    this.#onChange?.(next);
    const obj =
      target.kind === 'Namespace'
        ? next.namespaces.find((n) => n.metadata.name === target.name)
        : next.pods.find((p) => p.metadata.namespace === target.namespace && p.metadata.name === target.name);
    return Object.fromEntries(obj?.metadata.labels ?? []);
  }

  close(): Promise<void> {
    this.#onChange = null;
    return this.#inner.close();
  }
}

/** labels.json of a controller from before the state file (read once, on the state file's first start). */
export function isChangeRecord(x: unknown): x is Record<string, string | null> {
  return (
    typeof x === 'object' &&
    x !== null &&
    !Array.isArray(x) &&
    Object.values(x).every((v) => v === null || typeof v === 'string')
  );
}

function badRequest(message: string): LocalControllerError {
  return new LocalControllerError('FERRY_LOCAL_BAD_REQUEST', message);
}
