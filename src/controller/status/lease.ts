// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: the holder
// renews `renewTime` every retry period; a candidate takes the lease over only once the record has not
// changed for `leaseDurationSeconds` as seen by its own clock (the observed time, not the renewTime the
// holder wrote: clocks of two machines may disagree). Every write carries the resourceVersion read, so of
// two candidates only one wins (the other gets 409 and waits). Pure: the caller passes `nowMs`.

export interface LeaseRecord {
  readonly holderIdentity: string | null;
  readonly leaseDurationSeconds: number;
  /** RFC 3339 with microseconds (MicroTime), as the API stores it. */
  readonly acquireTime: string | null;
  readonly renewTime: string | null;
  readonly leaseTransitions: number;
}

/** What this candidate last saw of the lease and when (by its clock). */
export interface LeaseObservation {
  readonly record: LeaseRecord;
  readonly resourceVersion: string;
  readonly observedAtMs: number;
}

export type LeaseDecision =
  | { readonly action: 'create'; readonly record: LeaseRecord }
  | { readonly action: 'renew'; readonly record: LeaseRecord; readonly resourceVersion: string }
  | { readonly action: 'acquire'; readonly record: LeaseRecord; readonly resourceVersion: string }
  | { readonly action: 'wait'; readonly holder: string; readonly expiresAtMs: number };

export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

/** The next step for `me`, given the lease as just read (null: none exists) and the previous observation. */
export function decideLease(
  current: { readonly record: LeaseRecord; readonly resourceVersion: string } | null,
  previous: LeaseObservation | null,
  me: string,
  durationSeconds: number,
  nowMs: number,
): LeaseDecision {
  const now = microTime(nowMs);
  if (current === null) {
    return {
      action: 'create',
      record: {
        holderIdentity: me,
        leaseDurationSeconds: durationSeconds,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: 0,
      },
    };
  }
  const r = current.record;
  if (r.holderIdentity === me) {
    return {
      action: 'renew',
      record: { ...r, leaseDurationSeconds: durationSeconds, renewTime: now },
      resourceVersion: current.resourceVersion,
    };
  }
  const free = r.holderIdentity === null || r.holderIdentity === '';
  const observedAt = sameRecord(previous?.record, r) ? (previous?.observedAtMs ?? nowMs) : nowMs;
  const expiresAtMs = observedAt + r.leaseDurationSeconds * 1000;
  if (free || nowMs >= expiresAtMs) {
    return {
      action: 'acquire',
      record: {
        holderIdentity: me,
        leaseDurationSeconds: durationSeconds,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: r.leaseTransitions + 1,
      },
      resourceVersion: current.resourceVersion,
    };
  }
  return { action: 'wait', holder: r.holderIdentity ?? '', expiresAtMs };
}

/** The observation to keep after reading `current` at `nowMs` (unchanged record: the old time stays). */
export function observe(
  current: { readonly record: LeaseRecord; readonly resourceVersion: string },
  previous: LeaseObservation | null,
  nowMs: number,
): LeaseObservation {
  const same = sameRecord(previous?.record, current.record);
  return { ...current, observedAtMs: same && previous !== null ? previous.observedAtMs : nowMs };
}

function sameRecord(a: LeaseRecord | undefined, b: LeaseRecord): boolean {
  return (
    a !== undefined &&
    a.holderIdentity === b.holderIdentity &&
    a.renewTime === b.renewTime &&
    a.leaseTransitions === b.leaseTransitions
  );
}

/** Whether `me` may act as leader: it renewed successfully less than the lease duration ago. */
export function isLeading(lastRenewMs: number | null, durationSeconds: number, nowMs: number): boolean {
  return lastRenewMs !== null && nowMs < lastRenewMs + durationSeconds * 1000;
}

type Obj = { readonly [key: string]: unknown };

/** Lease JSON → record (hostile input: wrong types read as absent). */
export function parseLeaseSpec(spec: unknown): LeaseRecord {
  const s: Obj = typeof spec === 'object' && spec !== null ? (spec as Obj) : {};
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const int = (v: unknown, d: number) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : d);
  return {
    holderIdentity: str(s.holderIdentity),
    leaseDurationSeconds: int(s.leaseDurationSeconds, 15),
    acquireTime: str(s.acquireTime),
    renewTime: str(s.renewTime),
    leaseTransitions: int(s.leaseTransitions, 0),
  };
}
