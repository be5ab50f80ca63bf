// The live move between sidecar and ambient (`ferry migrate namespace|rollback`, docs/migration.md): each
// pod's phase, in `<stateDir>/migration.json`, written by the migration runner after a step succeeded and
// read by the local controller at every translation. A pod created with a sidecar (journal `sidecar: true`)
// and no record is `sidecar`. What the phases mean to the controller:
//   sidecar   translated with istio-proxy (announced as HBONE by its sidecar), never enrolled in the node
//   handover  still translated with istio-proxy, and also enrolled in the node ztunnel: the sidecar's
//             programs run first (docs/redirect.md "Sidecar mode: nested attachment"), the node's capture
//             is underneath, ready for the moment the sidecar lets go (or before it takes over)
//   ambient   a plain pod: its namespace's ambient label enrolls it, no sidecar is started for it
// Written atomically (rename), one file per cluster; ferry down removes it with the state dir.
import { readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClusterError } from './errors.ts';

export const MIGRATION_FILE = 'migration.json';

export type PodMigrationPhase = 'sidecar' | 'handover' | 'ambient';

const PHASES: readonly string[] = ['sidecar', 'handover', 'ambient'] satisfies PodMigrationPhase[];

/** `<ns>/<pod>` → phase. */
export type MigrationPhases = ReadonlyMap<string, PodMigrationPhase>;

/** The recorded phases; empty when no migration ever ran. A damaged file is an error naming it. */
export function readMigrationPhases(stateDir: string): Map<string, PodMigrationPhase> {
  const file = join(stateDir, MIGRATION_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new ClusterError('FERRY_CLUSTER_MIGRATION_STATE_CORRUPT', `${file} is not JSON`, { cause });
  }
  const pods = typeof parsed === 'object' && parsed !== null ? (parsed as { pods?: unknown }).pods : undefined;
  if (typeof pods !== 'object' || pods === null || Array.isArray(pods)) {
    throw new ClusterError(
      'FERRY_CLUSTER_MIGRATION_STATE_CORRUPT',
      `${file}: expected {"pods": {"<ns>/<pod>": phase}}`,
    );
  }
  const out = new Map<string, PodMigrationPhase>();
  for (const [key, phase] of Object.entries(pods)) {
    if (typeof phase !== 'string' || !PHASES.includes(phase)) {
      throw new ClusterError(
        'FERRY_CLUSTER_MIGRATION_STATE_CORRUPT',
        `${file}: pod ${key} has phase ${JSON.stringify(phase)}`,
      );
    }
    out.set(key, phase as PodMigrationPhase);
  }
  return out;
}

/** Records one pod's phase (read-modify-write; the runner is the only writer, one step at a time). */
export async function recordPodPhase(
  stateDir: string,
  namespace: string,
  pod: string,
  phase: PodMigrationPhase,
): Promise<void> {
  const phases = readMigrationPhases(stateDir);
  phases.set(`${namespace}/${pod}`, phase);
  const file = join(stateDir, MIGRATION_FILE);
  const body = { pods: Object.fromEntries([...phases].sort(([a], [b]) => (a < b ? -1 : 1))) };
  await writeFile(`${file}.tmp`, `${JSON.stringify(body, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

/** Pure: the phase of a pod of the runtime (created with a sidecar or not) under the recorded phases. */
export function podPhase(
  phases: MigrationPhases,
  pod: { readonly namespace: string; readonly name: string; readonly sidecar?: boolean },
): PodMigrationPhase {
  if (pod.sidecar !== true) return 'ambient'; // never had a sidecar: the labels alone decide
  return phases.get(`${pod.namespace}/${pod.name}`) ?? 'sidecar';
}
