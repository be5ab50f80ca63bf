// The manifest source (local mode, docs/architecture.md "Local cluster"): Kubernetes YAML files or directories, multi-document,
// `kind: List` expanded, each object validated on its own. A bad document or object is reported (file, line,
// Kind/ns/name, field) and excluded; everything else applies. `apply`/`delete` back `ferry apply/delete -f`
// while running. Owns the current object set; translation never sees files. Reads files, nothing else;
// with an ObjectStore, every new object set is handed to it (and must be durable) before it becomes current,
// and a restart begins from what the store restored instead of re-reading the files.
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { LineCounter, parseAllDocuments } from 'yaml';
import { parseK8sObject } from './k8s-parse.ts';
import { isObj, get as own } from './k8s-reader.ts';
import {
  buildClusterState,
  type ClusterState,
  type Diagnostic,
  type K8sObject,
  type MeshSource,
  refOf,
} from './types.ts';

export const MAX_MANIFEST_BYTES = 8 * 1024 * 1024; // a manifest is config, not data
const MAX_ALIASES = 100; // "billion laughs" guard for YAML anchors
const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

export interface ParseManifestOptions {
  readonly defaultNamespace: string;
  /** Sequence number of the first object in this text; later ones count up. */
  readonly firstSequence: number;
}

export interface ParsedManifest {
  readonly objects: readonly K8sObject[];
  /** The source document (plain JSON value) of `objects[i]`: what an ObjectStore keeps. */
  readonly documents: readonly unknown[];
  readonly diagnostics: readonly Diagnostic[];
}

/** An object with the document it was parsed from (re-parsing the document gives the object again). */
export interface ManifestEntry {
  readonly object: K8sObject;
  readonly document: unknown;
}

/**
 * Where the object set is kept across restarts (the local controller's state file). `commit` gets every new
 * set, before it becomes current: a change is applied (and acknowledged) only once `commit` resolved, and a
 * rejected commit changes nothing.
 */
export interface ObjectStore {
  /** The set committed by an earlier run, or null (first start: the source reads its paths). */
  readonly restored: readonly ManifestEntry[] | null;
  commit(entries: readonly ManifestEntry[]): Promise<void>;
}

function diag(file: string, line: number | null, code: Diagnostic['code'], message: string): Diagnostic {
  return { severity: 'error', code, object: '', field: '', message, file, line };
}

/** Parses one manifest file's text (multi-document YAML or JSON). Pure; never throws. */
export function parseManifestText(text: string, file: string, opts: ParseManifestOptions): ParsedManifest {
  const objects: K8sObject[] = [];
  const documents: unknown[] = [];
  const diagnostics: Diagnostic[] = [];
  if (text.length > MAX_MANIFEST_BYTES) {
    return {
      objects,
      documents,
      diagnostics: [diag(file, null, 'FERRY_MANIFEST_READ_FAILED', `larger than ${MAX_MANIFEST_BYTES} bytes`)],
    };
  }
  const lines = new LineCounter();
  let sequence = opts.firstSequence;
  for (const doc of parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false })) {
    const line = lines.linePos(doc.contents?.range?.[0] ?? doc.range[0]).line; // the object, not its '---'
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const at = lines.linePos(e.pos[0]).line;
        diagnostics.push(
          diag(file, at, 'FERRY_MANIFEST_YAML_SYNTAX', `YAML syntax error: ${e.message.split('\n')[0]}`),
        );
      }
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (err) {
      diagnostics.push(diag(file, line, 'FERRY_MANIFEST_YAML_SYNTAX', `YAML error: ${(err as Error).message}`));
      continue;
    }
    if (value === null || value === undefined) continue; // empty document ("---" at the end)
    // kubectl's `kind: List` wraps objects in `items`.
    const items =
      isObj(value) && own(value, 'kind') === 'List' && Array.isArray(own(value, 'items'))
        ? (own(value, 'items') as unknown[])
        : [value];
    for (const item of items) {
      const parsed = parseK8sObject(item, {
        origin: { file, line },
        sequence: sequence++,
        defaultNamespace: opts.defaultNamespace,
      });
      diagnostics.push(...parsed.diagnostics);
      if (parsed.object !== null) {
        objects.push(parsed.object);
        documents.push(item);
      }
    }
  }
  return { objects, documents, diagnostics };
}

/**
 * Re-parses a stored document as it was first parsed (same origin and sequence, so "oldest wins" keeps its
 * order). Pure; the object, or the error diagnostics when this version of Ferry no longer accepts it.
 */
export function parseStoredDocument(
  document: unknown,
  at: { readonly file: string; readonly line: number | null; readonly sequence: number },
  defaultNamespace = 'default',
): { object: K8sObject | null; diagnostics: readonly Diagnostic[] } {
  const parsed = parseK8sObject(document, {
    origin: { file: at.file, line: at.line },
    sequence: at.sequence,
    defaultNamespace,
  });
  return { object: parsed.object, diagnostics: parsed.diagnostics.filter((d) => d.severity === 'error') };
}

/** Expands files and directories (non-recursive, *.yaml|*.yml|*.json, sorted) into file paths. */
async function manifestFiles(paths: readonly string[], diagnostics: Diagnostic[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    try {
      if ((await stat(path)).isDirectory()) {
        const names = (await readdir(path)).filter((n) => MANIFEST_EXTENSIONS.has(extname(n))).sort();
        files.push(...names.map((n) => join(path, n)));
      } else {
        files.push(path);
      }
    } catch (err) {
      diagnostics.push(
        diag(
          path,
          null,
          'FERRY_MANIFEST_READ_FAILED',
          `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        ),
      );
    }
  }
  return files;
}

export interface ManifestSourceOptions {
  /** Files and directories read at start. */
  readonly paths: readonly string[];
  readonly defaultNamespace?: string;
  /** Receives every batch of diagnostics: the initial load, each apply and delete. */
  readonly onDiagnostics?: (diagnostics: readonly Diagnostic[]) => void;
  /** Keeps the object set across restarts (see ObjectStore); without one, it lives in memory only. */
  readonly store?: ObjectStore;
}

export interface ChangeResult {
  /** `Kind/ns/name` of the objects created, updated or deleted. */
  readonly changed: readonly string[];
  readonly diagnostics: readonly Diagnostic[];
}

export interface ChangeOptions {
  /** All or nothing: when any object or file has an error, nothing is applied (or deleted). */
  readonly atomic?: boolean;
}

const hasErrors = (list: readonly Diagnostic[]): boolean => list.some((d) => d.severity === 'error');

/** Objects from manifest files, changed by apply/delete; every change calls the start() callback. */
export class ManifestSource implements MeshSource {
  readonly #paths: readonly string[];
  readonly #defaultNamespace: string;
  readonly #onDiagnostics: (diagnostics: readonly Diagnostic[]) => void;
  readonly #store: ObjectStore | null;
  #objects = new Map<string, ManifestEntry>();
  #sequence = 0;
  #onChange: ((state: ClusterState) => void) | null = null;
  #closed = false;
  // apply/delete run one at a time so two `ferry apply` calls never interleave their reads and merges.
  #queue: Promise<unknown> = Promise.resolve();

  constructor(opts: ManifestSourceOptions) {
    this.#paths = [...opts.paths];
    this.#defaultNamespace = opts.defaultNamespace ?? 'default';
    this.#onDiagnostics = opts.onDiagnostics ?? (() => {});
    this.#store = opts.store ?? null;
  }

  async start(onChange: (state: ClusterState) => void): Promise<void> {
    if (this.#closed) throw new TypeError('ManifestSource is closed');
    if (this.#onChange !== null) throw new TypeError('ManifestSource already started');
    const restored = this.#store?.restored ?? null;
    if (restored === null) {
      await this.#serial(() => this.#apply(this.#paths, false, true));
    } else {
      // A restart serves exactly what was committed: the files may have changed or gone since.
      this.#objects = new Map(restored.map((e) => [refOf(e.object), e]));
      this.#sequence = restored.reduce((max, e) => Math.max(max, e.object.metadata.sequence), -1) + 1;
    }
    this.#onChange = onChange;
    onChange(this.state());
  }

  /**
   * Creates or replaces the objects in these files (`ferry apply -f`). With `atomic`, any error diagnostic
   * changes nothing (the running mesh stays as it was); otherwise bad objects are skipped.
   */
  apply(paths: readonly string[], opts: ChangeOptions = {}): Promise<ChangeResult> {
    return this.#serial(() => this.#apply(paths, opts.atomic === true));
  }

  /** Removes the objects named in these files (`ferry delete -f`); `atomic` as for apply. */
  delete(paths: readonly string[], opts: ChangeOptions = {}): Promise<ChangeResult> {
    return this.#serial(() => this.#delete(paths, opts.atomic === true));
  }

  state(): ClusterState {
    return buildClusterState([...this.#objects.values()].map((e) => e.object));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#onChange = null;
    await this.#queue.catch(() => {});
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(() => {
      if (this.#closed) throw new TypeError('ManifestSource is closed');
      return fn();
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  async #read(paths: readonly string[]): Promise<{ entries: ManifestEntry[]; diagnostics: Diagnostic[] }> {
    const diagnostics: Diagnostic[] = [];
    const entries: ManifestEntry[] = [];
    const firstSeen = new Map<string, K8sObject>();
    for (const file of await manifestFiles(paths, diagnostics)) {
      let text: string;
      try {
        const info = await stat(file);
        if (info.size > MAX_MANIFEST_BYTES)
          throw Object.assign(new Error(`larger than ${MAX_MANIFEST_BYTES} bytes`), { code: 'EFBIG' });
        text = await readFile(file, 'utf8');
      } catch (err) {
        diagnostics.push(diag(file, null, 'FERRY_MANIFEST_READ_FAILED', `cannot read: ${(err as Error).message}`));
        continue;
      }
      const parsed = parseManifestText(text, file, {
        defaultNamespace: this.#defaultNamespace,
        firstSequence: this.#sequence,
      });
      this.#sequence += parsed.objects.length + parsed.diagnostics.length + 1;
      diagnostics.push(...parsed.diagnostics);
      for (const [i, o] of parsed.objects.entries()) {
        const ref = refOf(o);
        const first = firstSeen.get(ref);
        if (first === undefined) {
          firstSeen.set(ref, o);
          entries.push({ object: o, document: parsed.documents[i] });
        } else {
          // The first definition stays: a later duplicate is far more often a copy-paste slip than an edit.
          const where = `${first.origin.file}${first.origin.line === null ? '' : `:${first.origin.line}`}`;
          diagnostics.push({
            severity: 'error',
            code: 'FERRY_MANIFEST_DUPLICATE',
            object: ref,
            field: 'metadata.name',
            message: `duplicate name: already defined at ${where}`,
            file: o.origin.file,
            line: o.origin.line,
          });
        }
      }
    }
    return { entries, diagnostics };
  }

  async #apply(paths: readonly string[], atomic: boolean, initial = false): Promise<ChangeResult> {
    const { entries, diagnostics } = await this.#read(paths);
    const changed: string[] = [];
    if (atomic && hasErrors(diagnostics)) return this.#finish(changed, diagnostics);
    const next = new Map(this.#objects);
    for (const e of entries) {
      const o = e.object;
      const ref = refOf(o);
      const old = next.get(ref)?.object;
      // An update keeps the object's age: "oldest wins" must not flip because a policy was re-applied.
      const object = old === undefined ? o : { ...o, metadata: { ...o.metadata, sequence: old.metadata.sequence } };
      next.set(ref, { object: object as K8sObject, document: e.document });
      changed.push(ref);
    }
    // Write-ahead: durable first (the first start commits too, so a restart never re-reads the files).
    if (changed.length > 0 || initial) await this.#store?.commit([...next.values()]);
    this.#objects = next;
    return this.#finish(changed, diagnostics);
  }

  async #delete(paths: readonly string[], atomic: boolean): Promise<ChangeResult> {
    const { entries, diagnostics } = await this.#read(paths);
    const changed: string[] = [];
    if (atomic && hasErrors(diagnostics)) return this.#finish(changed, diagnostics);
    const next = new Map(this.#objects);
    for (const { object: o } of entries) {
      const ref = refOf(o);
      if (next.delete(ref)) changed.push(ref);
      else
        diagnostics.push({
          severity: 'warning',
          code: 'FERRY_MANIFEST_NOT_FOUND',
          object: ref,
          field: '',
          message: 'not found: nothing to delete',
          file: o.origin.file,
          line: o.origin.line,
        });
    }
    if (changed.length > 0) await this.#store?.commit([...next.values()]);
    this.#objects = next;
    return this.#finish(changed, diagnostics);
  }

  #finish(changed: string[], diagnostics: Diagnostic[]): ChangeResult {
    if (diagnostics.length > 0) this.#onDiagnostics(diagnostics);
    if (changed.length > 0 && this.#onChange !== null) this.#onChange(this.state());
    return { changed, diagnostics };
  }
}
