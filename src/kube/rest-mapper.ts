// Which REST path serves an object: (apiVersion, kind) → resource, from the API server's discovery, as
// kubectl's RESTMapper does. Discovery is read once (`/api/v1` and every group-version under `/apis`) and
// kept; a kind the server does not serve is an error naming it, so `ferry apply` of a Gateway before its
// CRD exists says what is missing instead of sending a request to a made-up path.
import { isJson, type Json, type KubeClient } from './client.ts';
import { KubeError } from './errors.ts';

export interface ServedResource {
  readonly apiVersion: string;
  readonly kind: string;
  /** Plural, lowercase: the URL segment. */
  readonly resource: string;
  readonly namespaced: boolean;
}

/** What an object names about itself that the path needs. */
export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  /** Ignored for cluster-scoped kinds; `default` when empty for namespaced ones. */
  readonly namespace?: string;
  readonly name?: string;
}

export class RestMapper {
  readonly #byKind: ReadonlyMap<string, ServedResource>;

  constructor(served: readonly ServedResource[]) {
    this.#byKind = new Map(served.map((r) => [`${r.apiVersion}/${r.kind}`, r]));
  }

  /** Reads discovery from the server (one request per group-version). */
  static async discover(client: KubeClient, signal?: AbortSignal): Promise<RestMapper> {
    const served: ServedResource[] = [...resourcesOf('v1', await client.get('/api/v1', signal))];
    const groups = await client.get('/apis', signal);
    const versions = (Array.isArray(groups.groups) ? groups.groups : [])
      .filter(isJson)
      .flatMap((g) => (Array.isArray(g.versions) ? g.versions.filter(isJson) : []))
      .map((v) => v.groupVersion)
      .filter((gv): gv is string => typeof gv === 'string');
    const lists = await Promise.all(versions.map((gv) => client.get(`/apis/${gv}`, signal)));
    for (const [i, list] of lists.entries()) served.push(...resourcesOf(versions[i] as string, list));
    return new RestMapper(served);
  }

  resourceFor(apiVersion: string, kind: string): ServedResource {
    const found = this.#byKind.get(`${apiVersion}/${kind}`);
    if (found === undefined) {
      throw new KubeError(
        'FERRY_KUBE_KIND_NOT_SERVED',
        `the API server does not serve ${kind} in ${apiVersion} (is its CustomResourceDefinition installed?)`,
      );
    }
    return found;
  }

  /** The collection path (no name) or the object path of `ref`. */
  pathFor(ref: ObjectRef): string {
    const r = this.resourceFor(ref.apiVersion, ref.kind);
    const base = r.apiVersion.includes('/') ? `/apis/${r.apiVersion}` : `/api/${r.apiVersion}`;
    const ns = r.namespaced ? `/namespaces/${encodeURIComponent(nonEmpty(ref.namespace) ?? 'default')}` : '';
    const name = ref.name === undefined ? '' : `/${encodeURIComponent(ref.name)}`;
    return `${base}${ns}/${r.resource}${name}`;
  }

  isNamespaced(apiVersion: string, kind: string): boolean {
    return this.resourceFor(apiVersion, kind).namespaced;
  }
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

/** The main resources (not subresources such as `pods/status`) of one discovery APIResourceList. */
function resourcesOf(apiVersion: string, list: Json): ServedResource[] {
  const out: ServedResource[] = [];
  for (const r of Array.isArray(list.resources) ? list.resources : []) {
    if (!isJson(r) || typeof r.name !== 'string' || r.name.includes('/') || typeof r.kind !== 'string') continue;
    out.push({ apiVersion, kind: r.kind, resource: r.name, namespaced: r.namespaced === true });
  }
  return out;
}
