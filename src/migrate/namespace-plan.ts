// `ferry migrate namespace|rollback` (docs/migration.md "Moving a namespace"): the pure planner. From the
// namespace's pods (created with a sidecar or not), each pod's recorded migration phase, the namespace's
// labels and the preconditions, the ordered steps that remain. It never decides from what a step did last
// time, only from the recorded phases, so a re-run after a stop anywhere continues where it stopped and a
// finished move plans nothing (idempotent). The handover keeps every pod captured at every moment:
//   forward:  sidecar --enroll-node--> handover (node ztunnel enrolled under the still-attached sidecar,
//             whose programs run first and win) --stop-sidecar--> ambient (node ztunnel's capture applies)
//   rollback: ambient --start-sidecar--> handover (sidecar attached over the node's capture)
//             --unenroll-node--> sidecar
// The pod phase is written by the runner after a step succeeded; each step is idempotent, so a step that
// ran but was not recorded runs again harmlessly.

/** A pod's phase in the migration state (what the local controller reads). */
export type PodPhase = 'sidecar' | 'handover' | 'ambient';

export type MigrationDirection = 'forward' | 'rollback';

export interface MigrationPod {
  readonly name: string;
  /** Created with Ferry's sidecar (journaled at creation). Only these pods move. */
  readonly injected: boolean;
  /** Recorded phase; an injected pod without a record is `sidecar`. */
  readonly phase: PodPhase;
}

export interface NamespacePlanInput {
  readonly namespace: string;
  readonly direction: MigrationDirection;
  readonly pods: readonly MigrationPod[];
  readonly labels: Readonly<Record<string, string>>;
  /** Blockers `ferry migrate check` reported for the namespace (forward only). */
  readonly blockers: readonly string[];
  /** Converted objects (HTTPRoutes, waypoint, policies) the user has not applied yet (forward only). */
  readonly missingObjects: readonly string[];
}

export type MigrationStep =
  | { readonly kind: 'label-ambient' }
  | { readonly kind: 'enroll-node'; readonly pod: string }
  | { readonly kind: 'stop-sidecar'; readonly pod: string }
  | { readonly kind: 'start-sidecar'; readonly pod: string }
  | { readonly kind: 'unenroll-node'; readonly pod: string }
  | { readonly kind: 'label-sidecar' };

export type NamespacePlan =
  | { readonly kind: 'blocked'; readonly namespace: string; readonly reasons: readonly string[] }
  | {
      readonly kind: 'steps';
      readonly namespace: string;
      readonly direction: MigrationDirection;
      readonly steps: readonly MigrationStep[];
      /** Pods of the namespace created without a sidecar: they follow the namespace label, no step of theirs. */
      readonly unchanged: readonly string[];
    };

export const INJECTION_LABEL = 'istio-injection';
export const DATAPLANE_MODE_LABEL = 'istio.io/dataplane-mode';

/** Pure: the steps still to run to move `namespace` in `direction`. */
export function planNamespaceMigration(input: NamespacePlanInput): NamespacePlan {
  const { namespace, direction } = input;
  if (direction === 'forward') {
    const reasons = [
      ...input.blockers.map((b) => `migrate check blocker: ${b}`),
      ...input.missingObjects.map(
        (o) => `converted object not applied: ${o} (ferry migrate convert, then ferry apply)`,
      ),
    ];
    if (reasons.length > 0) return { kind: 'blocked', namespace, reasons };
  }
  // Name order: every pair of pods interoperates in every phase (sidecar↔ambient is HBONE both ways), so
  // the order only has to be stable, which makes the output of a resumed run line up with the first one.
  const movers = input.pods.filter((p) => p.injected).sort((a, b) => (a.name < b.name ? -1 : 1));
  const unchanged = input.pods
    .filter((p) => !p.injected)
    .map((p) => p.name)
    .sort();
  const steps: MigrationStep[] = [];
  if (direction === 'forward') {
    // First: a pod that leaves its sidecar is announced by the namespace's ambient label; without it the
    // controller would see a plain TCP pod and the node would unenroll it.
    if (!labelledAmbient(input.labels)) steps.push({ kind: 'label-ambient' });
    for (const p of movers) steps.push(...forwardSteps(p));
  } else {
    for (const p of movers) steps.push(...rollbackSteps(p));
    // Last: while any pod is still ambient, the label keeps it announced as HBONE.
    if (!labelledSidecar(input.labels)) steps.push({ kind: 'label-sidecar' });
  }
  return { kind: 'steps', namespace, direction, steps, unchanged };
}

function forwardSteps(p: MigrationPod): MigrationStep[] {
  switch (p.phase) {
    case 'sidecar':
    case 'handover': // enroll-node is idempotent: a stop right after it resumes safely
      return [
        { kind: 'enroll-node', pod: p.name },
        { kind: 'stop-sidecar', pod: p.name },
      ];
    case 'ambient':
      return [];
    default:
      return assertNever(p.phase);
  }
}

function rollbackSteps(p: MigrationPod): MigrationStep[] {
  switch (p.phase) {
    case 'ambient':
    case 'handover': // the sidecar may not have started before the stop: start-sidecar is idempotent
      return [
        { kind: 'start-sidecar', pod: p.name },
        { kind: 'unenroll-node', pod: p.name },
      ];
    case 'sidecar':
      return [];
    default:
      return assertNever(p.phase);
  }
}

/** The phase a pod is in once `step` ran (for the runner's record), or undefined for a namespace step. */
export function phaseAfter(step: MigrationStep): PodPhase | undefined {
  switch (step.kind) {
    case 'enroll-node':
    case 'start-sidecar':
      return 'handover';
    case 'stop-sidecar':
      return 'ambient';
    case 'unenroll-node':
      return 'sidecar';
    case 'label-ambient':
    case 'label-sidecar':
      return undefined;
    default:
      return assertNever(step);
  }
}

/** The label changes of a namespace step (value null removes the label). */
export function labelChanges(step: {
  readonly kind: 'label-ambient' | 'label-sidecar';
}): Record<string, string | null> {
  return step.kind === 'label-ambient'
    ? { [DATAPLANE_MODE_LABEL]: 'ambient', [INJECTION_LABEL]: null }
    : { [INJECTION_LABEL]: 'enabled', [DATAPLANE_MODE_LABEL]: null };
}

/** One line of progress output for a step. */
export function describeStep(namespace: string, step: MigrationStep): string {
  switch (step.kind) {
    case 'label-ambient':
      return `namespace ${namespace}: label ${DATAPLANE_MODE_LABEL}=ambient, remove ${INJECTION_LABEL}`;
    case 'label-sidecar':
      return `namespace ${namespace}: label ${INJECTION_LABEL}=enabled, remove ${DATAPLANE_MODE_LABEL}`;
    case 'enroll-node':
      return `pod ${namespace}/${step.pod}: enroll in the node ztunnel (the sidecar keeps serving)`;
    case 'stop-sidecar':
      return `pod ${namespace}/${step.pod}: hand over to the node ztunnel, stop the sidecar`;
    case 'start-sidecar':
      return `pod ${namespace}/${step.pod}: start the sidecar (the node ztunnel keeps serving)`;
    case 'unenroll-node':
      return `pod ${namespace}/${step.pod}: unenroll from the node ztunnel`;
    default:
      return assertNever(step);
  }
}

function labelledAmbient(labels: Readonly<Record<string, string>>): boolean {
  return labels[DATAPLANE_MODE_LABEL] === 'ambient' && labels[INJECTION_LABEL] === undefined;
}

function labelledSidecar(labels: Readonly<Record<string, string>>): boolean {
  return labels[INJECTION_LABEL] === 'enabled' && labels[DATAPLANE_MODE_LABEL] === undefined;
}

function assertNever(x: never): never {
  throw new Error(`unexpected ${JSON.stringify(x)}`);
}
