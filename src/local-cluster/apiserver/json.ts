// Plain JSON values as the API server stores and patches them: untrusted until validated, so readers
// check shapes and use own properties only (a key named "__proto__" is data, never behaviour). Pure.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Obj = { [key: string]: unknown };

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Own property only. */
export function own(o: Obj, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

/** The metadata map of an object ({} when absent or not a map). */
export function metaOf(o: Obj): Obj {
  const m = own(o, 'metadata');
  return isObj(m) ? m : {};
}

export function stringAt(o: Obj, key: string): string | undefined {
  const v = own(o, key);
  return typeof v === 'string' ? v : undefined;
}

export function deepClone<T>(v: T): T {
  return structuredClone(v);
}

/** Structural equality of JSON values (key order does not matter). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => deepEqual(x, b[i]));
  }
  if (Array.isArray(b)) return false;
  // Keys whose value is undefined are absent (as they are once serialized).
  const ao = a as Obj;
  const bo = b as Obj;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  if (ak.length !== bk.length) return false;
  return ak.every((k) => Object.hasOwn(bo, k) && deepEqual(ao[k], bo[k]));
}

/** Builds an object from entries without a prototype-bearing `__proto__` setter path. */
export function setOwn(o: Obj, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}
