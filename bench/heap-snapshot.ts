// Heap snapshot summaries for the soak and policy-scale benches: objects and self bytes per constructor
// (DevTools' "Summary" view), and the difference between two snapshots of one process, largest growth
// first, so a leak shows up as a constructor whose count keeps growing (docs/performance.md, "Soak").
import { readFile } from 'node:fs/promises';

export interface ConstructorCount {
  readonly name: string;
  readonly count: number;
  readonly bytes: number;
}

export interface HeapSummary {
  readonly nodes: number;
  readonly bytes: number;
  readonly byConstructor: ReadonlyMap<string, ConstructorCount>;
}

interface SnapshotJson {
  readonly snapshot: {
    readonly meta: { readonly node_fields: readonly string[]; readonly node_types: readonly unknown[] };
  };
  readonly nodes: readonly number[];
  readonly strings: readonly string[];
}

/** Groups like DevTools: objects by constructor name, the rest by kind in parentheses. */
function groupName(type: string, name: string): string {
  switch (type) {
    case 'object':
    case 'native':
      return name;
    case 'closure':
      return '(closure)';
    case 'string':
    case 'concatenated string':
    case 'sliced string':
      return '(string)';
    case 'array':
      return '(array)';
    case 'code':
      return '(compiled code)';
    case 'regexp':
      return 'RegExp';
    case 'number':
    case 'heap number':
      return '(number)';
    default:
      return `(${type})`;
  }
}

/** Parses a .heapsnapshot file (JSON) into counts per constructor. */
export async function summarizeHeapSnapshot(path: string): Promise<HeapSummary> {
  const snap = JSON.parse(await readFile(path, 'utf8')) as SnapshotJson;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0] as readonly string[];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const counts = new Map<string, { name: string; count: number; bytes: number }>();
  let bytes = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt] as number] ?? 'unknown';
    const group = groupName(type, snap.strings[snap.nodes[i + nameAt] as number] ?? '');
    const size = snap.nodes[i + sizeAt] as number;
    bytes += size;
    const c = counts.get(group);
    if (c === undefined) counts.set(group, { name: group, count: 1, bytes: size });
    else {
      c.count++;
      c.bytes += size;
    }
  }
  return { nodes: snap.nodes.length / width, bytes, byConstructor: counts };
}

export interface ConstructorDelta {
  readonly name: string;
  readonly countBefore: number;
  readonly countAfter: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

/** Constructors whose self bytes or count changed most between two snapshots (by |Δbytes|), top `limit`. */
export function compareHeapSummaries(before: HeapSummary, after: HeapSummary, limit = 15): ConstructorDelta[] {
  const names = new Set([...before.byConstructor.keys(), ...after.byConstructor.keys()]);
  const deltas: ConstructorDelta[] = [];
  for (const name of names) {
    const b = before.byConstructor.get(name);
    const a = after.byConstructor.get(name);
    deltas.push({
      name,
      countBefore: b?.count ?? 0,
      countAfter: a?.count ?? 0,
      bytesBefore: b?.bytes ?? 0,
      bytesAfter: a?.bytes ?? 0,
    });
  }
  const magnitude = (d: ConstructorDelta) => Math.abs(d.bytesAfter - d.bytesBefore);
  return deltas.sort((x, y) => magnitude(y) - magnitude(x)).slice(0, limit);
}

/** One line per delta, for the bench's report. */
export function formatDeltas(deltas: readonly ConstructorDelta[]): string[] {
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  return deltas.map(
    (d) =>
      `${d.name.slice(0, 40).padEnd(40)} count ${String(d.countBefore).padStart(7)} → ${String(d.countAfter).padStart(7)}` +
      `   self ${kib(d.bytesBefore).padStart(10)} → ${kib(d.bytesAfter).padStart(10)}`,
  );
}
