// The manifest problems `ferry status` shows: the latest diagnostics of each (file, object), not a log of
// every failed apply. Applying the same bad file again replaces its earlier lines instead of adding to
// them (issue 9: one deeply nested YAML applied repeatedly listed 34 identical lines), and the list is
// capped, oldest dropped first. Pure: the controller keeps the array, this decides what it holds.
import type { Diagnostic } from '../../controller/sources/types.ts';

/** How many diagnostics `ferry status` keeps (most recent last). */
export const MAX_KEPT_DIAGNOSTICS = 100;

/** The key one apply's diagnostics replace: same file and same object (`''` when none was identified). */
function keyOf(d: Diagnostic): string {
  return `${d.file ?? ''}\u0000${d.object}`;
}

function identity(d: Diagnostic): string {
  return JSON.stringify([d.file, d.line, d.severity, d.code, d.object, d.field, d.message]);
}

/**
 * The kept list after a new batch (one apply, delete or load): earlier entries for any (file, object) in
 * the batch are dropped, the batch is appended without exact duplicates, and at most `max` remain.
 */
export function keepLatestDiagnostics(
  kept: readonly Diagnostic[],
  batch: readonly Diagnostic[],
  max: number = MAX_KEPT_DIAGNOSTICS,
): Diagnostic[] {
  const replaced = new Set(batch.map(keyOf));
  const next = kept.filter((d) => !replaced.has(keyOf(d)));
  const seen = new Set<string>();
  for (const d of batch) {
    const id = identity(d);
    if (seen.has(id)) continue;
    seen.add(id);
    next.push(d);
  }
  return next.slice(Math.max(0, next.length - Math.max(0, max)));
}
