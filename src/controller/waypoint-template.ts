// The waypoint template (`--waypoint-template`, the chart's ConfigMap `<release>-waypoint-template`, see
// charts/ferry/README.md "Waypoints"): the objects the controller creates for each Gateway of class
// ferry-waypoint. Parsed and checked once at startup; filled per Gateway by replacing the placeholders
// in string values of the parsed documents (never in the YAML text, so a Gateway name cannot inject
// structure). Every filled object carries Ferry's managed-by label (the ownership mark the deployer
// checks) and a hash of what it was filled to, so an unchanged object is never written again. Pure.
import { createHash } from 'node:crypto';
import { parseAllDocuments } from 'yaml';
import { ControllerError } from './errors.ts';

type Obj = { readonly [key: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'ferry-controller';
/** Annotation: sha256 of the object as filled from the template (before this annotation was added). */
export const TEMPLATE_HASH_ANNOTATION = 'ferry.dev/template-hash';

/** The kinds a template may hold, with their API collection paths. */
export const TEMPLATE_KINDS = {
  'v1/ServiceAccount': 'serviceaccounts',
  'v1/Service': 'services',
  'apps/v1/Deployment': 'deployments',
} as const;
export type TemplateKind = keyof typeof TEMPLATE_KINDS;

export interface WaypointTemplate {
  readonly objects: readonly Obj[];
}

export interface WaypointGateway {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export interface FilledObject {
  readonly kind: TemplateKind;
  readonly namespace: string;
  readonly name: string;
  readonly hash: string;
  /** The object to create (ownerReferences, labels and the hash annotation included). */
  readonly object: Obj;
}

/** Parses the template's YAML documents; refuses anything but ServiceAccounts, Services and Deployments. */
export function parseWaypointTemplate(text: string, file: string): WaypointTemplate {
  const objects: Obj[] = [];
  for (const [i, doc] of parseAllDocuments(text).entries()) {
    if (doc.errors.length > 0) throw invalid(file, `document ${i + 1}: ${doc.errors[0]?.message ?? 'bad YAML'}`);
    const o: unknown = doc.toJS();
    if (o === null || o === undefined) continue; // an empty document (a trailing `---`)
    if (!isObj(o)) throw invalid(file, `document ${i + 1} is not an object`);
    const kind = `${String(o.apiVersion)}/${String(o.kind)}`;
    if (!(kind in TEMPLATE_KINDS)) {
      throw invalid(file, `document ${i + 1}: ${kind} is not one of ${Object.keys(TEMPLATE_KINDS).join(', ')}`);
    }
    const meta = isObj(o.metadata) ? o.metadata : {};
    if (typeof meta.name !== 'string' || meta.name === '') {
      throw invalid(file, `document ${i + 1} (${kind}): metadata.name must be set`);
    }
    // Owner references cannot cross namespaces: every object lives in its Gateway's namespace.
    if (meta.namespace !== '__GATEWAY_NAMESPACE__') {
      throw invalid(file, `document ${i + 1} (${kind}): metadata.namespace must be __GATEWAY_NAMESPACE__`);
    }
    objects.push(o);
  }
  if (!objects.some((o) => o.kind === 'Deployment')) throw invalid(file, 'no Deployment in the template');
  return { objects };
}

/** The template's objects for one Gateway. */
export function fillWaypointTemplate(template: WaypointTemplate, gw: WaypointGateway): FilledObject[] {
  const values: Record<string, string> = {
    __GATEWAY_NAME__: gw.name,
    __GATEWAY_NAMESPACE__: gw.namespace,
    __GATEWAY_UID__: gw.uid,
  };
  return template.objects.map((o) => {
    const filled = replaceInStrings(o, values) as Obj;
    const meta = filled.metadata as Obj;
    const labels = { ...(isObj(meta.labels) ? meta.labels : {}), [MANAGED_BY_LABEL]: MANAGED_BY_VALUE };
    const marked = { ...filled, metadata: { ...meta, labels } };
    const hash = createHash('sha256').update(canonicalJson(marked)).digest('hex').slice(0, 32);
    const annotations = { ...(isObj(meta.annotations) ? meta.annotations : {}), [TEMPLATE_HASH_ANNOTATION]: hash };
    return {
      kind: `${String(o.apiVersion)}/${String(o.kind)}` as TemplateKind,
      namespace: String(meta.namespace),
      name: String(meta.name),
      hash,
      object: { ...marked, metadata: { ...marked.metadata, annotations } },
    };
  });
}

function replaceInStrings(v: unknown, values: Readonly<Record<string, string>>): unknown {
  if (typeof v === 'string') return v.replace(/__GATEWAY_(NAME|NAMESPACE|UID)__/g, (m) => values[m] ?? m);
  if (Array.isArray(v)) return v.map((x) => replaceInStrings(x, values));
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, replaceInStrings(x, values)]));
  return v;
}

function canonicalJson(v: unknown): string {
  const sort = (x: unknown): unknown =>
    Array.isArray(x)
      ? x.map(sort)
      : isObj(x)
        ? Object.fromEntries(
            Object.keys(x)
              .sort()
              .map((k) => [k, sort(x[k])]),
          )
        : x;
  return JSON.stringify(sort(v));
}

function invalid(file: string, problem: string): ControllerError {
  return new ControllerError('FERRY_CONTROLLER_WAYPOINT_TEMPLATE_INVALID', `${file}: ${problem}`);
}
