// The local controller's durable state (docs/operations.md, "What survives which crash"): every object
// `ferry apply` / `ferry delete` / the `-f` manifests left in the mesh (as their source documents), the
// `ferry label` overrides and the enrollments last reported by the ztunnels, in one file,
// `<stateDir>/controller-state.json`. Write-ahead: a change is committed here (temp file + fsync + rename +
// fsync of the directory: runtime/durable-file.ts) before it becomes current, so it is acknowledged only once
// durable, and a restarted controller starts from exactly this. One file, rewritten whole, so objects and
// labels always change together. Invariant: a file that is present but unreadable, damaged (checksum) or no
// longer parses is an error naming it, never an empty mesh (that would be fail-open: policies gone).
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ManifestEntry, type ObjectStore, parseStoredDocument } from '../../controller/sources/manifest-source.ts';
import { formatDiagnostic, refOf } from '../../controller/sources/types.ts';
import { removeTornTemps, writeFileDurable } from '../../runtime/durable-file.ts';
import type { PodPaths } from './enrollment.ts';
import { LocalControllerError } from './errors.ts';

export const STATE_FILE = 'controller-state.json';
const FORMAT = 'ferry-controller-state';
const VERSION = 1;

/** Object ref (`Namespace/<name>`, `Pod/<ns>/<name>`) → label key → value (null: removed). */
export type LabelOverrides = ReadonlyMap<string, Readonly<Record<string, string | null>>>;
/** node → uid → pod paths. */
export type EnrolledPods = ReadonlyMap<string, ReadonlyMap<string, PodPaths>>;

export interface ControllerState {
  readonly objects: readonly ManifestEntry[];
  readonly labels: LabelOverrides;
  readonly enrolled: EnrolledPods;
}

interface StoredObject {
  readonly file: string;
  readonly line: number | null;
  readonly sequence: number;
  readonly document: unknown;
}

/** Pure: the file's text for a state: a header line (format, version, SHA-256 of the body), then the body. */
export function serializeState(state: ControllerState): string {
  const body = JSON.stringify({
    objects: state.objects.map(
      (e): StoredObject => ({
        file: e.object.origin.file,
        line: e.object.origin.line,
        sequence: e.object.metadata.sequence,
        document: e.document,
      }),
    ),
    labels: Object.fromEntries(state.labels),
    enrolled: Object.fromEntries([...state.enrolled].map(([node, pods]) => [node, Object.fromEntries(pods)])),
  });
  return `${JSON.stringify({ format: FORMAT, version: VERSION, sha256: sha256(body) })}\n${body}\n`;
}

/**
 * Pure: the state in a file's text; FERRY_LOCAL_BAD_STATE naming `file` and what is wrong (truncated,
 * damaged, wrong format, an object this version no longer accepts).
 */
export function parseState(text: string, file: string, defaultNamespace = 'default'): ControllerState {
  const bad = (what: string, cause?: unknown) =>
    new LocalControllerError(
      'FERRY_LOCAL_BAD_STATE',
      `${file}: ${what}; the controller will not start from a partial state (restore the file or ferry down)`,
      cause === undefined ? undefined : { cause },
    );
  const newline = text.indexOf('\n');
  if (newline === -1) throw bad('truncated (no header line)');
  let header: unknown;
  let body: unknown;
  const bodyText = text.slice(newline + 1).replace(/\n$/, '');
  try {
    header = JSON.parse(text.slice(0, newline));
  } catch (err) {
    throw bad('header is not JSON', err);
  }
  if (!isRecord(header) || header.format !== FORMAT) throw bad(`not a ${FORMAT} file`);
  if (header.version !== VERSION) throw bad(`version ${String(header.version)} (this controller reads ${VERSION})`);
  if (header.sha256 !== sha256(bodyText)) throw bad('checksum mismatch (the file is damaged or was edited)');
  try {
    body = JSON.parse(bodyText);
  } catch (err) {
    throw bad('body is not JSON', err);
  }
  if (!isRecord(body) || !Array.isArray(body.objects) || !isRecord(body.labels) || !isRecord(body.enrolled)) {
    throw bad('objects, labels and enrolled expected');
  }
  const objects: ManifestEntry[] = [];
  const refs = new Set<string>();
  for (const [i, raw] of body.objects.entries()) {
    if (
      !isRecord(raw) ||
      typeof raw.file !== 'string' ||
      !(raw.line === null || Number.isInteger(raw.line)) ||
      !Number.isInteger(raw.sequence)
    ) {
      throw bad(`objects[${i}] is malformed`);
    }
    const at = { file: raw.file, line: raw.line as number | null, sequence: raw.sequence as number };
    const parsed = parseStoredDocument(raw.document, at, defaultNamespace);
    if (parsed.object === null || parsed.diagnostics.length > 0) {
      throw bad(`objects[${i}] is no longer accepted: ${parsed.diagnostics.map(formatDiagnostic).join('; ')}`);
    }
    const ref = refOf(parsed.object);
    if (refs.has(ref)) throw bad(`objects[${i}]: ${ref} appears twice`);
    refs.add(ref);
    objects.push({ object: parsed.object, document: raw.document });
  }
  const labels = new Map<string, Record<string, string | null>>();
  for (const [ref, changes] of Object.entries(body.labels)) {
    if (!isRecord(changes) || !Object.values(changes).every((v) => v === null || typeof v === 'string')) {
      throw bad(`labels[${JSON.stringify(ref)}] is malformed`);
    }
    labels.set(ref, changes as Record<string, string | null>);
  }
  const enrolled = new Map<string, Map<string, PodPaths>>();
  for (const [node, pods] of Object.entries(body.enrolled)) {
    if (!isRecord(pods)) throw bad(`enrolled[${JSON.stringify(node)}] is malformed`);
    const byUid = new Map<string, PodPaths>();
    for (const [uid, p] of Object.entries(pods)) {
      if (!isRecord(p) || typeof p.netnsPath !== 'string' || typeof p.cgroupPath !== 'string') {
        throw bad(`enrolled[${JSON.stringify(node)}][${JSON.stringify(uid)}] is malformed`);
      }
      byUid.set(uid, { netnsPath: p.netnsPath, cgroupPath: p.cgroupPath });
    }
    enrolled.set(node, byUid);
  }
  return { objects, labels, enrolled };
}

/** Reads the state file: null when there is none (first start); FERRY_LOCAL_BAD_STATE when it is bad. */
export async function readStateFile(file: string, defaultNamespace = 'default'): Promise<ControllerState | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new LocalControllerError('FERRY_LOCAL_BAD_STATE', `${file}: cannot read: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseState(text, file, defaultNamespace);
}

/** The state file of one controller; changes are written one at a time, in call order. */
export class ControllerStateStore {
  readonly file: string;
  /** What an earlier controller committed; null on the first start (nothing was committed yet). */
  readonly restored: ControllerState | null;
  #current: ControllerState;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(file: string, restored: ControllerState | null, initial: ControllerState) {
    this.file = file;
    this.restored = restored;
    this.#current = initial;
  }

  /**
   * Opens `<stateDir>/controller-state.json`, removing temp files a crashed write left. Without a file, the
   * state starts empty except for `firstStart` (what an older controller kept elsewhere, e.g. labels.json);
   * it is written by the first commit.
   */
  static async open(
    stateDir: string,
    firstStart: Partial<ControllerState> = {},
    defaultNamespace = 'default',
  ): Promise<ControllerStateStore> {
    const file = join(stateDir, STATE_FILE);
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    await removeTornTemps(file);
    const restored = await readStateFile(file, defaultNamespace);
    const initial = restored ?? {
      objects: firstStart.objects ?? [],
      labels: firstStart.labels ?? new Map(),
      enrolled: firstStart.enrolled ?? new Map(),
    };
    return new ControllerStateStore(file, restored, initial);
  }

  /** The last committed state (or the initial one, before the first commit). */
  get current(): ControllerState {
    return this.#current;
  }

  /**
   * Commits `change(current)` durably; resolves with the new state once it is on disk. `change` runs when
   * the earlier commits are done, so concurrent changes of different parts never lose each other. A failed
   * write rejects (FERRY_LOCAL_STATE_WRITE_FAILED) and leaves the committed state as it was.
   */
  update(change: (state: ControllerState) => ControllerState): Promise<ControllerState> {
    const run = this.#queue.then(async () => {
      const next = change(this.#current);
      try {
        await writeFileDurable(this.file, serializeState(next));
      } catch (err) {
        throw new LocalControllerError(
          'FERRY_LOCAL_STATE_WRITE_FAILED',
          `${this.file}: cannot write the controller state (${(err as Error).message}); the change was not applied`,
          { cause: err },
        );
      }
      this.#current = next;
      return next;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Resolves once every commit asked for so far is done (written or failed). */
  async settled(): Promise<void> {
    await this.#queue;
  }

  /** The ObjectStore a ManifestSource commits through. */
  objectStore(): ObjectStore {
    return {
      restored: this.restored?.objects ?? null,
      commit: async (entries) => {
        await this.update((s) => ({ ...s, objects: entries }));
      },
    };
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
