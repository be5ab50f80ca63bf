// The cluster's state on disk: an append-only journal (`<stateDir>/objects.jsonl`, one JSON record a line).
// Invariant: an object is journaled BEFORE it is created, so after a kill -9 or a crash anywhere in `up`,
// `down` knows every object that may exist (removing one that was never created is a no-op). One write(2)
// with O_APPEND per record, so a killed writer leaves at worst one torn last line, which readers skip.
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterError } from './errors.ts';

export type StateRecord =
  | { readonly kind: 'cluster'; readonly name: string; readonly createdAtMs: number; readonly nodes: number }
  | { readonly kind: 'netns'; readonly name: string }
  | { readonly kind: 'link'; readonly netns: string; readonly name: string }
  | { readonly kind: 'cgroup'; readonly path: string }
  | { readonly kind: 'pin-root'; readonly path: string }
  | {
      readonly kind: 'process';
      readonly pid: number;
      /** /proc/<pid>/stat field 22: tells a recycled pid apart from ours. */
      readonly startTicks: string;
      readonly role: string;
    }
  | {
      readonly kind: 'pod';
      readonly namespace: string;
      readonly name: string;
      readonly node: number;
      readonly ip: string;
      readonly netnsPath: string;
      readonly cgroupDir: string;
      readonly labels: Readonly<Record<string, string>>;
      /** Created with Ferry's sidecar (decided once, at creation, like an admission webhook). */
      readonly sidecar?: boolean;
    }
  | { readonly kind: 'ready' };

export type PodRecord = Extract<StateRecord, { kind: 'pod' }>;

export const JOURNAL_FILE = 'objects.jsonl';

export class StateJournal {
  readonly stateDir: string;
  readonly #file: string;

  constructor(stateDir: string) {
    this.stateDir = stateDir;
    this.#file = join(stateDir, JOURNAL_FILE);
  }

  /** Records an object that is about to be created. Call before creating it, never after. */
  record(rec: StateRecord): void {
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    appendFileSync(this.#file, `${JSON.stringify(rec)}\n`, { mode: 0o600 });
  }
}

export interface LoadedState {
  readonly records: readonly StateRecord[];
  /** Lines that were not records (a torn last line after a crash); reported, never fatal. */
  readonly problems: readonly ClusterError[];
}

/** Reads the journal; a missing journal is an empty state. */
export function loadState(stateDir: string): LoadedState {
  let text: string;
  try {
    text = readFileSync(join(stateDir, JOURNAL_FILE), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { records: [], problems: [] };
    throw err;
  }
  return parseJournal(text);
}

/** Parses journal text. Pure: unknown or malformed lines become problems, never exceptions. */
export function parseJournal(text: string): LoadedState {
  const records: StateRecord[] = [];
  const problems: ClusterError[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const rec = parseRecord(line);
    if (rec === null) {
      problems.push(new ClusterError('FERRY_CLUSTER_STATE_CORRUPT', `journal line ${i + 1}: ${line.slice(0, 120)}`));
    } else {
      records.push(rec);
    }
  });
  return { records, problems };
}

function parseRecord(line: string): StateRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || !('kind' in v)) return null;
  const o = v as Record<string, unknown>;
  const str = (k: string): boolean => typeof o[k] === 'string' && o[k] !== '';
  const num = (k: string): boolean => typeof o[k] === 'number' && Number.isInteger(o[k]);
  switch (o.kind) {
    case 'cluster':
      return str('name') && num('createdAtMs') && num('nodes') ? (o as StateRecord) : null;
    case 'netns':
      return str('name') && !String(o.name).includes('/') ? (o as StateRecord) : null;
    case 'link':
      return str('netns') && str('name') ? (o as StateRecord) : null;
    case 'cgroup':
    case 'pin-root':
      return str('path') && String(o.path).startsWith('/') ? (o as StateRecord) : null;
    case 'process':
      return num('pid') && Number(o.pid) > 1 && str('startTicks') && str('role') ? (o as StateRecord) : null;
    case 'pod':
      return str('namespace') && str('name') && num('node') && str('ip') && str('netnsPath') && str('cgroupDir')
        ? ({ ...o, labels: isStringRecord(o.labels) ? o.labels : {} } as StateRecord)
        : null;
    case 'ready':
      return { kind: 'ready' };
    default:
      return null;
  }
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && Object.values(v).every((x) => typeof x === 'string');
}

export function podsOf(state: LoadedState): PodRecord[] {
  return state.records.filter((r): r is PodRecord => r.kind === 'pod');
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === code;
}
