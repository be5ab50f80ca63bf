// Strategic merge patch (`application/strategic-merge-patch+json`), as client-side `kubectl apply` and
// `kubectl edit` send it for built-in kinds: maps merge, null deletes, and lists with a declared merge key
// (containers by name, container ports by containerPort, service ports by port, conditions by type, …) merge
// element by element instead of being replaced. Directives: `$patch: replace|delete|merge` in maps and list
// elements, `$retainKeys`, `$setElementOrder/<field>`, `$deleteFromPrimitiveList/<field>`. The per-kind
// tables below are the patch strategies of the Kubernetes types for the fields those kinds have. Pure.
import { deepClone, deepEqual, isObj, type Obj, setOwn } from './json.ts';
import { PatchError } from './patch.ts';

interface ListStrategy {
  readonly mergeKey?: string;
  /** A list of scalars merged as a set (metadata.finalizers). */
  readonly primitive?: boolean;
  readonly item?: MapSchema;
}

interface FieldSchema {
  readonly list?: ListStrategy;
  readonly map?: MapSchema;
}

type MapSchema = { readonly [field: string]: FieldSchema };

const byKey = (mergeKey: string, item?: MapSchema): FieldSchema => ({
  list: item === undefined ? { mergeKey } : { mergeKey, item },
});

const OBJECT_META: MapSchema = {
  finalizers: { list: { primitive: true } },
  ownerReferences: byKey('uid'),
};
const CONTAINER: MapSchema = {
  ports: byKey('containerPort'),
  env: byKey('name'),
  volumeMounts: byKey('mountPath'),
  volumeDevices: byKey('devicePath'),
};
const POD_SPEC: MapSchema = {
  containers: byKey('name', CONTAINER),
  initContainers: byKey('name', CONTAINER),
  ephemeralContainers: byKey('name', CONTAINER),
  volumes: byKey('name'),
  imagePullSecrets: byKey('name'),
  hostAliases: byKey('ip'),
  topologySpreadConstraints: byKey('topologyKey'),
  resourceClaims: byKey('name'),
  schedulingGates: byKey('name'),
};
const CONDITIONS = byKey('type');
const WITH_META: MapSchema = { metadata: { map: OBJECT_META } };

const SCHEMAS: Readonly<Record<string, MapSchema>> = {
  Pod: {
    ...WITH_META,
    spec: { map: POD_SPEC },
    status: { map: { conditions: CONDITIONS, podIPs: byKey('ip'), hostIPs: byKey('ip') } },
  },
  Deployment: {
    ...WITH_META,
    spec: { map: { template: { map: { metadata: { map: OBJECT_META }, spec: { map: POD_SPEC } } } } },
    status: { map: { conditions: CONDITIONS } },
  },
  Service: { ...WITH_META, spec: { map: { ports: byKey('port') } }, status: { map: { conditions: CONDITIONS } } },
  Node: { ...WITH_META, status: { map: { conditions: CONDITIONS, addresses: byKey('type') } } },
  Namespace: { ...WITH_META, status: { map: { conditions: CONDITIONS } } },
  ServiceAccount: { ...WITH_META, secrets: byKey('name') },
  CustomResourceDefinition: { ...WITH_META, status: { map: { conditions: CONDITIONS } } },
};

const MAX_DEPTH = 100;

/** Applies a strategic merge patch for an object of `kind` (unknown kinds: only metadata strategies). */
export function applyStrategicMergePatch(original: unknown, patch: unknown, kind: string): unknown {
  if (!isObj(patch)) throw new PatchError('a strategic merge patch must be a JSON object');
  const merged = mergeMap(isObj(original) ? original : {}, patch, SCHEMAS[kind] ?? WITH_META, 0);
  if (merged === undefined) throw new PatchError('a strategic merge patch cannot delete the whole object');
  return merged;
}

function isDirective(key: string): boolean {
  return (
    key === '$patch' ||
    key === '$retainKeys' ||
    key.startsWith('$setElementOrder/') ||
    key.startsWith('$deleteFromPrimitiveList/')
  );
}

/** Merges `patch` into `orig`; undefined means "delete this map" (`$patch: delete`). */
function mergeMap(orig: Obj, patch: Obj, schema: MapSchema, depth: number): Obj | undefined {
  if (depth > MAX_DEPTH) throw new PatchError(`patch nested deeper than ${MAX_DEPTH} levels`);
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  if (directive === 'replace') return mergeMap({}, withoutKey(patch, '$patch'), schema, depth + 1);
  if (directive !== undefined && directive !== 'merge') {
    throw new PatchError(`unknown $patch directive ${JSON.stringify(directive)}`);
  }
  const out: Obj = { ...orig };
  for (const key of Object.keys(patch)) {
    if (isDirective(key)) continue;
    const value = patch[key];
    const field = Object.hasOwn(schema, key) ? schema[key] : undefined;
    if (value === null) {
      delete out[key];
    } else if (isObj(value)) {
      const current = Object.hasOwn(out, key) && isObj(out[key]) ? (out[key] as Obj) : {};
      const merged = mergeMap(current, value, field?.map ?? {}, depth + 1);
      if (merged === undefined) delete out[key];
      else setOwn(out, key, merged);
    } else if (Array.isArray(value)) {
      const current = Object.hasOwn(out, key) && Array.isArray(out[key]) ? (out[key] as unknown[]) : [];
      setOwn(
        out,
        key,
        field?.list === undefined ? cleanList(value, depth) : mergeList(current, value, field.list, key, depth),
      );
    } else {
      setOwn(out, key, value);
    }
  }
  for (const key of Object.keys(patch)) {
    const value = patch[key];
    if (key.startsWith('$deleteFromPrimitiveList/')) {
      const field = key.slice('$deleteFromPrimitiveList/'.length);
      if (!Array.isArray(value)) throw new PatchError(`${key} must be a list`);
      const current = Object.hasOwn(out, field) ? out[field] : undefined;
      if (Array.isArray(current))
        setOwn(
          out,
          field,
          current.filter((x) => !value.some((v) => deepEqual(v, x))),
        );
    } else if (key.startsWith('$setElementOrder/')) {
      const field = key.slice('$setElementOrder/'.length);
      if (!Array.isArray(value)) throw new PatchError(`${key} must be a list`);
      const current = Object.hasOwn(out, field) ? out[field] : undefined;
      const strategy = Object.hasOwn(schema, field) ? schema[field]?.list : undefined;
      if (Array.isArray(current)) setOwn(out, field, reorder(current, value, strategy?.mergeKey));
    }
  }
  const retain = patch.$retainKeys;
  if (retain !== undefined) {
    if (!Array.isArray(retain) || !retain.every((k) => typeof k === 'string')) {
      throw new PatchError('$retainKeys must be a list of field names');
    }
    for (const key of Object.keys(out)) if (!retain.includes(key)) delete out[key];
  }
  return out;
}

function withoutKey(o: Obj, key: string): Obj {
  const out = { ...o };
  delete out[key];
  return out;
}

// A list without merge semantics replaces the old one; its map elements lose any directives.
function cleanList(list: readonly unknown[], depth: number): unknown[] {
  return list.map((x) => (isObj(x) ? (mergeMap({}, x, {}, depth + 1) ?? {}) : deepClone(x)));
}

function mergeList(
  orig: readonly unknown[],
  patch: readonly unknown[],
  s: ListStrategy,
  field: string,
  depth: number,
): unknown[] {
  const replace = patch.some((x) => isObj(x) && x.$patch === 'replace');
  const items = patch.filter((x) => !(isObj(x) && x.$patch === 'replace'));
  if (s.primitive === true) {
    if (replace) return deepClone([...items]);
    const out = [...orig];
    for (const x of items) if (!out.some((y) => deepEqual(x, y))) out.push(deepClone(x));
    return out;
  }
  const key = s.mergeKey ?? '';
  const itemSchema = s.item ?? {};
  const out: unknown[] = replace ? [] : [...orig];
  for (const p of items) {
    if (!isObj(p)) throw new PatchError(`${field}: expected a map element, got ${typeof p}`);
    if (!Object.hasOwn(p, key)) throw new PatchError(`${field}: element does not contain declared merge key "${key}"`);
    const idx = out.findIndex((o) => isObj(o) && deepEqual(o[key], p[key]));
    if (p.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    const merged = mergeMap(idx >= 0 ? (out[idx] as Obj) : {}, p, itemSchema, depth + 1);
    if (merged === undefined) continue;
    if (idx >= 0) out[idx] = merged;
    else out.push(merged);
  }
  return out;
}

// `$setElementOrder`: the listed elements first, in the given order; unlisted ones keep their order after.
function reorder(list: readonly unknown[], order: readonly unknown[], mergeKey: string | undefined): unknown[] {
  const keyOf = (x: unknown): unknown => (mergeKey !== undefined && isObj(x) ? x[mergeKey] : x);
  const rest = [...list];
  const out: unknown[] = [];
  for (const o of order) {
    const idx = rest.findIndex((x) => deepEqual(keyOf(x), keyOf(o)));
    if (idx >= 0) out.push(...rest.splice(idx, 1));
  }
  return [...out, ...rest];
}
