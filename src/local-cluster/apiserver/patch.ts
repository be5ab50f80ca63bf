// JSON merge patch (RFC 7386, `application/merge-patch+json`: what `kubectl label`/`annotate` and patches of
// custom resources send) and JSON patch (RFC 6902, `application/json-patch+json`). Both work on copies and
// never mutate their inputs. A bad patch is a PatchError (the HTTP edge turns it into 422/400). Pure.
import { deepClone, deepEqual, isObj, type Obj, setOwn } from './json.ts';

export class PatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PatchError';
  }
}

const MAX_PATCH_DEPTH = 100; // deeper documents are hostile: recursion must stay bounded

/** RFC 7386: maps merge, null deletes, anything else (lists included) replaces. */
export function applyMergePatch(target: unknown, patch: unknown, depth = 0): unknown {
  if (depth > MAX_PATCH_DEPTH) throw new PatchError(`patch nested deeper than ${MAX_PATCH_DEPTH} levels`);
  if (!isObj(patch)) return deepClone(patch);
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const key of Object.keys(patch)) {
    const value = patch[key];
    if (value === null) delete out[key];
    else setOwn(out, key, applyMergePatch(Object.hasOwn(out, key) ? out[key] : undefined, value, depth + 1));
  }
  return out;
}

type Op = { op: string; path: string; value?: unknown; from?: string };

const MAX_OPERATIONS = 10_000;

/** RFC 6902 on a copy of `doc`. */
export function applyJsonPatch(doc: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw new PatchError('a JSON patch must be a list of operations');
  if (patch.length > MAX_OPERATIONS) throw new PatchError(`more than ${MAX_OPERATIONS} operations`);
  let out = deepClone(doc);
  patch.forEach((raw, i) => {
    if (!isObj(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') {
      throw new PatchError(`operation ${i}: needs "op" and "path" strings`);
    }
    out = applyOp(out, raw as Op, i);
  });
  return out;
}

function parsePointer(path: string, i: number): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`operation ${i}: path ${JSON.stringify(path)} must start with "/"`);
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function applyOp(doc: unknown, op: Op, i: number): unknown {
  const path = parsePointer(op.path, i);
  switch (op.op) {
    case 'add':
      return add(doc, path, opValue(op, i), i);
    case 'remove':
      return remove(doc, path, i).doc;
    case 'replace': {
      const removed = remove(doc, path, i).doc;
      return add(removed, path, opValue(op, i), i);
    }
    case 'move': {
      const from = parsePointer(fromOf(op, i), i);
      const r = remove(doc, from, i);
      return add(r.doc, path, r.value, i);
    }
    case 'copy':
      return add(doc, path, deepClone(lookup(doc, parsePointer(fromOf(op, i), i), i)), i);
    case 'test':
      if (!deepEqual(lookup(doc, path, i), opValue(op, i)))
        throw new PatchError(`operation ${i}: test failed at ${op.path}`);
      return doc;
    default:
      throw new PatchError(`operation ${i}: unknown op ${JSON.stringify(op.op)}`);
  }
}

function opValue(op: Op, i: number): unknown {
  if (!Object.hasOwn(op, 'value')) throw new PatchError(`operation ${i}: ${op.op} needs a "value"`);
  return deepClone(op.value);
}

function fromOf(op: Op, i: number): string {
  if (typeof op.from !== 'string') throw new PatchError(`operation ${i}: ${op.op} needs a "from" string`);
  return op.from;
}

function lookup(doc: unknown, path: readonly string[], i: number): unknown {
  let cur = doc;
  for (const seg of path) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(seg, cur.length - 1, i)];
    else if (isObj(cur) && Object.hasOwn(cur, seg)) cur = cur[seg];
    else throw new PatchError(`operation ${i}: path /${path.join('/')} does not exist`);
  }
  return cur;
}

function arrayIndex(seg: string, max: number, i: number): number {
  if (!/^(0|[1-9][0-9]*)$/.test(seg) || Number(seg) > max) {
    throw new PatchError(`operation ${i}: bad array index ${JSON.stringify(seg)}`);
  }
  return Number(seg);
}

function add(doc: unknown, path: readonly string[], value: unknown, i: number): unknown {
  if (path.length === 0) return value;
  const parent = lookup(doc, path.slice(0, -1), i);
  const last = path[path.length - 1] ?? '';
  if (Array.isArray(parent)) {
    const idx = last === '-' ? parent.length : arrayIndex(last, parent.length, i);
    parent.splice(idx, 0, value);
  } else if (isObj(parent)) setOwn(parent, last, value);
  else throw new PatchError(`operation ${i}: parent of /${path.join('/')} is not a map or list`);
  return doc;
}

function remove(doc: unknown, path: readonly string[], i: number): { doc: unknown; value: unknown } {
  if (path.length === 0) throw new PatchError(`operation ${i}: cannot remove the whole document`);
  const parent = lookup(doc, path.slice(0, -1), i);
  const last = path[path.length - 1] ?? '';
  if (Array.isArray(parent)) {
    const idx = arrayIndex(last, parent.length - 1, i);
    const [value] = parent.splice(idx, 1);
    return { doc, value };
  }
  if (isObj(parent) && Object.hasOwn(parent, last)) {
    const value = parent[last];
    delete parent[last];
    return { doc, value };
  }
  throw new PatchError(`operation ${i}: path /${path.join('/')} does not exist`);
}
