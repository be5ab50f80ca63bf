// What a ztunnel holds from delta xDS: the accepted resources per type URL, by name, with their versions,
// already converted to domain values. `applyDeltaResponse` is all-or-nothing: every resource of a response
// is converted first; one bad resource rejects the whole response and the held state is unchanged
// (docs/architecture.md "Failure semantics": keep the last good config). Pure: the client does the I/O and the store swap.
import type { Authorization, MeshConfig, Service, Workload } from '../mesh/types.ts';
import {
  type AddressValue,
  type ConvertResult,
  type L7Value,
  parseAddressResource,
  parseAuthorizationResource,
  parseL7Resource,
  type XdsResourceError,
} from './convert.ts';
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  isRecord,
  isXdsTypeUrl,
  L7_TYPE_URL,
  stringField,
  type XdsProtos,
  type XdsTypeUrl,
} from './proto.ts';

export interface Held<T> {
  readonly version: string;
  readonly value: T;
}

export interface XdsHeldState {
  readonly addresses: ReadonlyMap<string, Held<AddressValue>>;
  readonly authorizations: ReadonlyMap<string, Held<Authorization>>;
  /** Waypoints only: Gateway API routes, L7 policies, waypoint Gateways, ReferenceGrants. */
  readonly l7: ReadonlyMap<string, Held<L7Value>>;
}

export const EMPTY_HELD_STATE: XdsHeldState = { addresses: new Map(), authorizations: new Map(), l7: new Map() };

export type ApplyOutcome =
  | {
      readonly ok: true;
      readonly typeUrl: XdsTypeUrl;
      readonly nonce: string;
      readonly state: XdsHeldState;
      readonly updated: readonly string[];
      readonly removed: readonly string[];
    }
  | { readonly ok: false; readonly typeUrl: string; readonly nonce: string; readonly error: XdsResourceError };

function reject(typeUrl: string, nonce: string, resource: string, field: string, reason: string): ApplyOutcome {
  const where = field === '' ? '' : `${field}: `;
  return {
    ok: false,
    typeUrl,
    nonce,
    error: { code: 'FERRY_XDS_RESOURCE_REJECTED', resource, field, reason, message: `${resource}: ${where}${reason}` },
  };
}

/** Applies one DeltaDiscoveryResponse (decoded plain object) to `held`, or says which resource is bad. */
export function applyDeltaResponse(protos: XdsProtos, held: XdsHeldState, response: unknown): ApplyOutcome {
  const r = isRecord(response) ? response : {};
  const typeUrl = stringField(r, 'type_url');
  const nonce = stringField(r, 'nonce');
  if (!isXdsTypeUrl(typeUrl))
    return reject(typeUrl, nonce, '(response)', 'type_url', `unsupported type URL ${JSON.stringify(typeUrl)}`);
  const resources = Array.isArray(r.resources) ? r.resources : [];
  const removed = Array.isArray(r.removed_resources) ? r.removed_resources.filter((n) => typeof n === 'string') : [];
  if (typeUrl === ADDRESS_TYPE_URL) {
    const c = convertAll(resources, typeUrl, nonce, (name, bytes) => parseAddressResource(protos, name, bytes));
    if (!Array.isArray(c)) return c;
    const state = { ...held, addresses: merged(held.addresses, removed, c) };
    return { ok: true, typeUrl, nonce, state, updated: c.map(([n]) => n), removed };
  }
  if (typeUrl === L7_TYPE_URL) {
    const c = convertAll(resources, typeUrl, nonce, (name, bytes) => parseL7Resource(protos, name, bytes));
    if (!Array.isArray(c)) return c;
    const state = { ...held, l7: merged(held.l7, removed, c) };
    return { ok: true, typeUrl, nonce, state, updated: c.map(([n]) => n), removed };
  }
  const c = convertAll(resources, typeUrl, nonce, (name, bytes) => parseAuthorizationResource(protos, name, bytes));
  if (!Array.isArray(c)) return c;
  const state = { ...held, authorizations: merged(held.authorizations, removed, c) };
  return { ok: true, typeUrl, nonce, state, updated: c.map(([n]) => n), removed };
}

/** Converts every resource of a response, or returns the first rejection. */
function convertAll<T>(
  resources: readonly unknown[],
  typeUrl: XdsTypeUrl,
  nonce: string,
  parse: (name: string, bytes: Uint8Array) => ConvertResult<T>,
): [string, Held<T>][] | ApplyOutcome {
  const converted: [string, Held<T>][] = [];
  for (const [i, item] of resources.entries()) {
    const res = isRecord(item) ? item : {};
    const name = stringField(res, 'name');
    const label = name === '' ? `resources[${i}]` : name;
    if (name === '') return reject(typeUrl, nonce, label, 'name', 'resource has no name');
    const any = isRecord(res.resource) ? res.resource : null;
    if (any === null) return reject(typeUrl, nonce, label, 'resource', 'resource body missing');
    if (any.type_url !== typeUrl) {
      return reject(
        typeUrl,
        nonce,
        label,
        'resource.type_url',
        `expected ${typeUrl}, got ${JSON.stringify(any.type_url)}`,
      );
    }
    const bytes = any.value instanceof Uint8Array ? any.value : new Uint8Array(0);
    const result = parse(name, bytes);
    if (!result.ok) return { ok: false, typeUrl, nonce, error: result.error };
    converted.push([name, { version: stringField(res, 'version'), value: result.value }]);
  }
  return converted;
}

function merged<T>(
  previous: ReadonlyMap<string, Held<T>>,
  removed: readonly string[],
  updated: readonly [string, Held<T>][],
): ReadonlyMap<string, Held<T>> {
  const next = new Map(previous);
  for (const name of removed) next.delete(name);
  for (const [name, h] of updated) next.set(name, h);
  return next;
}

/** The full domain config of what is held, in resource-name order (deterministic across sources). */
export function meshConfigOf(held: XdsHeldState): MeshConfig {
  const workloads: Workload[] = [];
  const services: Service[] = [];
  for (const name of [...held.addresses.keys()].sort()) {
    const v = held.addresses.get(name)!.value;
    if (v.kind === 'workload') workloads.push(v.workload);
    else services.push(v.service);
  }
  const policies = [...held.authorizations.keys()].sort().map((name) => held.authorizations.get(name)!.value);
  return { workloads, services, policies };
}

/** Name → version of one type, for initial_resource_versions on reconnect. */
export function heldVersions(held: XdsHeldState, typeUrl: XdsTypeUrl): Record<string, string> {
  const map: ReadonlyMap<string, Held<unknown>> = typeUrl === AUTHORIZATION_TYPE_URL
    ? held.authorizations
    : typeUrl === L7_TYPE_URL
      ? held.l7
      : held.addresses;
  const out: Record<string, string> = {};
  for (const [name, h] of map) out[name] = h.version;
  return out;
}
