// Schema-driven reading of an untrusted YAML node tree for the static config parser (local-config.ts).
// Walks the `yaml` package's nodes (not toJS) so that every error carries the file, the path
// (`workloads[1].workloadIps[0]`), the offending value and its line/column. Collects errors instead of
// throwing; callers build nothing from a file with any error. Recursion follows the schema, never the
// input, and every node visited (aliases included) is charged to a budget, so hostile input can neither
// blow the stack nor expand without bound.
import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter, type Node } from 'yaml';

export const LOCAL_CONFIG_ERROR_CODES = [
  'FERRY_CONFIG_YAML_SYNTAX', // the text is not one well-formed YAML document
  'FERRY_CONFIG_TOO_LARGE', // file size, nesting depth or node budget (after alias expansion) exceeded
  'FERRY_CONFIG_UNKNOWN_KEY', // a key the format does not define (deny_unknown_fields)
  'FERRY_CONFIG_UNSUPPORTED_KEY', // a ztunnel key whose behaviour Ferry does not implement
  'FERRY_CONFIG_MISSING_KEY', // a required key is absent
  'FERRY_CONFIG_WRONG_TYPE', // a value of the wrong YAML type (map, list, string, number, boolean)
  'FERRY_CONFIG_INVALID_VALUE', // right type, bad value (IP, port, enum, name, ...)
  'FERRY_CONFIG_DUPLICATE', // a uid, service, policy, address or key defined twice
  'FERRY_CONFIG_UNKNOWN_REFERENCE', // a reference to a policy the file does not define
] as const;

export type LocalConfigErrorCode = (typeof LOCAL_CONFIG_ERROR_CODES)[number];

/** One problem in a config file. `message` is the one-line form for logs and the CLI. */
export interface LocalConfigError {
  readonly code: LocalConfigErrorCode;
  readonly file: string;
  /** Where in the document, e.g. `workloads[1].workloadIps[0]`; "" for the document itself. */
  readonly path: string;
  /** The offending value, rendered short (`"10.0.0.300"`, `a map`); null when there is none (missing key). */
  readonly value: string | null;
  readonly reason: string;
  /** 1-based position of the offending node, when known. */
  readonly line: number | null;
  readonly column: number | null;
  readonly message: string;
}

/** Largest file accepted: far above any hand-written mesh, small enough to parse quickly. */
export const MAX_LOCAL_CONFIG_BYTES = 16 * 1024 * 1024;
/** Nodes visited, counting each alias expansion again: bounds work on "billion laughs" input. */
const MAX_NODES_VISITED = 2_000_000;
/** More errors than this are not reported: the first ones are what a user fixes first. */
const MAX_ERRORS = 100;
const MAX_RENDERED_VALUE = 64;

export interface KeySpec {
  readonly required?: readonly string[];
  readonly optional?: readonly string[];
  /** ztunnel keys that change nothing Ferry does: accepted and ignored. */
  readonly ignored?: readonly string[];
  /** ztunnel keys whose behaviour Ferry lacks: rejected, so a file never means less than it says. */
  readonly unsupported?: readonly string[];
}

/** A YAML map checked against a KeySpec. `get` returns undefined for an absent key or an explicit null. */
export interface Fields {
  readonly path: string;
  readonly node: Node;
  get(key: string): Node | undefined;
  at(key: string): string;
}

/** One entry of a free-form map (`services: {"ns/host": ...}`, `ports: {80: 8080}`). */
export interface Entry {
  readonly key: string;
  readonly keyNode: Node;
  readonly value: Node | undefined;
  readonly path: string;
}

const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (IDENT_RE.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

export function renderValue(value: unknown): string {
  let text: string;
  if (isMap(value)) text = 'a map';
  else if (isSeq(value)) text = 'a list';
  else if (isScalar(value)) text = renderValue(value.value);
  else if (value === null || value === undefined) text = 'null';
  else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    text = JSON.stringify(value);
  } else text = `a ${typeof value}`;
  return text.length > MAX_RENDERED_VALUE ? `${text.slice(0, MAX_RENDERED_VALUE)}…` : text;
}

export class ConfigReader {
  readonly #file: string;
  readonly #doc: Document;
  readonly #lines: LineCounter;
  readonly #errors: LocalConfigError[] = [];
  #visited = 0;
  #exhausted = false;

  constructor(file: string, doc: Document, lines: LineCounter) {
    this.#file = file;
    this.#doc = doc;
    this.#lines = lines;
  }

  get errors(): readonly LocalConfigError[] {
    return this.#errors;
  }

  /** Records an error at `node` (its position and value), or at `at` when the value is absent. */
  fail(code: LocalConfigErrorCode, path: string, node: Node | null | undefined, reason: string, at?: Node): void {
    // After the budget ran out every value reads as absent: errors past that point are noise.
    if (this.#errors.length >= MAX_ERRORS || this.#exhausted) return;
    const where = node ?? at;
    const pos = where?.range ? this.#lines.linePos(where.range[0]) : null;
    // undefined: no value to show (missing key); null: the value was absent or null where one was needed.
    const value = node === undefined ? null : renderValue(node);
    const loc = pos === null ? '' : `:${pos.line}:${pos.col}`;
    const got = value === null ? '' : ` (got ${value})`;
    this.#errors.push({
      code,
      file: this.#file,
      path,
      value,
      reason,
      line: pos?.line ?? null,
      column: pos?.col ?? null,
      message: `${this.#file}${loc}: ${path === '' ? '<document>' : path}: ${reason}${got}`,
    });
  }

  /** Follows aliases and charges the node budget; undefined for absent or null. */
  resolve(raw: unknown): Node | undefined {
    if (this.#exhausted) return undefined;
    if (++this.#visited > MAX_NODES_VISITED) {
      this.fail('FERRY_CONFIG_TOO_LARGE', '', undefined, `more than ${MAX_NODES_VISITED} values after alias expansion`);
      this.#exhausted = true;
      return undefined;
    }
    let node = raw;
    for (let hops = 0; isAlias(node); hops++) {
      if (hops > 100) return undefined; // aliases to aliases: far beyond any sane file
      node = node.resolve(this.#doc);
    }
    if (node === null || node === undefined) return undefined;
    if (isScalar(node) && node.value === null) return undefined;
    return node as Node;
  }

  wrongType(path: string, node: Node | undefined, expected: string, at?: Node): void {
    this.fail('FERRY_CONFIG_WRONG_TYPE', path, node ?? null, `expected ${expected}`, at);
  }

  /** A map whose keys are checked against `spec`; null (after recording errors) when it is not usable. */
  fields(node: Node | undefined, path: string, spec: KeySpec): Fields | null {
    if (!isMap(node)) {
      this.wrongType(path, node, 'a map');
      return null;
    }
    const values = new Map<string, Node | undefined>();
    let ok = true;
    for (const pair of node.items) {
      const keyNode = this.resolve(pair.key);
      if (!isScalar(keyNode) || typeof keyNode.value !== 'string') {
        this.wrongType(path, keyNode, 'string keys', node);
        ok = false;
        continue;
      }
      const key = keyNode.value;
      const keyPath = childPath(path, key);
      if (spec.required?.includes(key) || spec.optional?.includes(key)) {
        values.set(key, this.resolve(pair.value));
      } else if (spec.ignored?.includes(key)) {
        // accepted for compatibility with ztunnel files; nothing in Ferry reads it
      } else if (spec.unsupported?.includes(key)) {
        this.fail('FERRY_CONFIG_UNSUPPORTED_KEY', keyPath, undefined, `"${key}" is not supported by Ferry`, keyNode);
        ok = false;
      } else {
        const known = [...(spec.required ?? []), ...(spec.optional ?? [])].join(', ');
        this.fail('FERRY_CONFIG_UNKNOWN_KEY', keyPath, undefined, `unknown key "${key}" (known: ${known})`, keyNode);
        ok = false;
      }
    }
    for (const key of spec.required ?? []) {
      if (values.get(key) === undefined) {
        this.fail('FERRY_CONFIG_MISSING_KEY', childPath(path, key), undefined, `"${key}" is required`, node);
        ok = false;
      }
    }
    if (!ok) return null;
    return { path, node, get: (key) => values.get(key), at: (key) => childPath(path, key) };
  }

  /** A list's items with their paths; an absent list is empty. */
  list(node: Node | undefined, path: string): { node: Node | undefined; path: string }[] | null {
    if (node === undefined) return [];
    if (!isSeq(node)) {
      this.wrongType(path, node, 'a list');
      return null;
    }
    return node.items.map((item, i) => ({ node: this.resolve(item), path: childPath(path, i) }));
  }

  /** A map with arbitrary keys (numbers or strings, compared as text); an absent map is empty. */
  entries(node: Node | undefined, path: string): Entry[] | null {
    if (node === undefined) return [];
    if (!isMap(node)) {
      this.wrongType(path, node, 'a map');
      return null;
    }
    const out: Entry[] = [];
    let ok = true;
    for (const pair of node.items) {
      const keyNode = this.resolve(pair.key);
      const k = isScalar(keyNode) ? keyNode.value : undefined;
      if (keyNode === undefined || (typeof k !== 'string' && typeof k !== 'number')) {
        this.wrongType(path, keyNode, 'string or number keys', node);
        ok = false;
        continue;
      }
      const key = String(k);
      out.push({ key, keyNode, value: this.resolve(pair.value), path: childPath(path, key) });
    }
    return ok ? out : null;
  }

  string(node: Node | undefined, path: string): string | null {
    if (isScalar(node) && typeof node.value === 'string') return node.value;
    this.wrongType(path, node, 'a string');
    return null;
  }

  integer(node: Node | undefined, path: string, min: number, max: number, what = 'an integer'): number | null {
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== 'number') {
      this.wrongType(path, node, 'a number');
      return null;
    }
    if (!Number.isInteger(v) || v < min || v > max) {
      this.fail('FERRY_CONFIG_INVALID_VALUE', path, node, `expected ${what} in ${min}..${max}`);
      return null;
    }
    return v;
  }

  boolean(node: Node | undefined, path: string): boolean | null {
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    this.wrongType(path, node, 'true or false');
    return null;
  }

  /** A string that must be one of `allowed` (exact spelling). */
  oneOf<T extends string>(node: Node | undefined, path: string, allowed: readonly T[]): T | null {
    const s = this.string(node, path);
    if (s === null) return null;
    const hit = allowed.find((a) => a === s);
    if (hit === undefined) {
      this.fail('FERRY_CONFIG_INVALID_VALUE', path, node, `expected one of ${allowed.join(', ')}`);
      return null;
    }
    return hit;
  }
}

/** Reads an optional field with `read`, or returns `fallback` when it is absent or null. */
export function opt<T>(f: Fields, key: string, fallback: T, read: (n: Node, p: string) => T | null): T | null {
  const node = f.get(key);
  return node === undefined ? fallback : read(node, f.at(key));
}

/** Bookkeeping for cross-entry checks (uniqueness, references) with the first definition's path. */
export class Seen {
  readonly #first = new Map<string, string>();
  claim(r: ConfigReader, key: string, path: string, node: Node | undefined, what: string): void {
    const first = this.#first.get(key);
    if (first === undefined) this.#first.set(key, path);
    else r.fail('FERRY_CONFIG_DUPLICATE', path, node, `${what} ${JSON.stringify(key)} is already defined at ${first}`);
  }
  has(key: string): boolean {
    return this.#first.has(key);
  }
}
