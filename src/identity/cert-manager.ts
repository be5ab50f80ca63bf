// The ztunnel's certificate manager (istio/ztunnel src/identity/manager.rs's role, docs/architecture.md "Identity", "Failure semantics"):
// one certificate per SPIFFE identity, fetched on first use and prefetched for local workloads, renewed at
// half-life, retried with exponential backoff (200 ms doubling, capped at 150 s and never past expiry).
// Invariants: concurrent requests for one identity share one fetch; a still-valid certificate keeps being
// served while the CA is unreachable; an expired certificate is never served; a forgotten identity's late
// fetch result is dropped. Time and timers come from an injectable clock so rotation is testable.
import { X509Certificate } from 'node:crypto';
import { IdentityError } from './errors.ts';
import { type IdentityLog, SILENT_LOG } from './log.ts';
import { formatSpiffeId, type SpiffeId } from './spiffe-id.ts';
import type { WorkloadCertificate } from './workload-certificate.ts';

/** Where certificates come from: the gRPC CA client, or an in-process CA in tests and local mode. */
/** Certificates for local identities (CertManager implements it). */
export interface CertificateProvider {
  getCertificate(id: SpiffeId): Promise<WorkloadCertificate>;
}

/** What the ztunnel needs from its certificate manager. */
export interface ManagedCertificates extends CertificateProvider {
  /** Identities of local workloads: prefetch them, forget the rest. */
  setLocalIdentities(ids: readonly SpiffeId[]): void;
  /** Called with each rotated certificate. */
  onRotate(listener: (cert: WorkloadCertificate) => void): Disposable;
  snapshot(): unknown;
  close(): void;
}

export interface CertificateSource {
  fetch(identity: SpiffeId): Promise<WorkloadCertificate>;
}

/** Time and timers. The default uses Date.now and unref'd setTimeout. */
export interface CertClock {
  now(): number;
  setTimeout(fn: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const SYSTEM_CLOCK: CertClock = {
  now: () => Date.now(),
  setTimeout: (fn, delayMs) => setTimeout(fn, delayMs).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export const INITIAL_BACKOFF_MS = 200;
export const MAX_BACKOFF_MS = 150_000; // ztunnel's cap
/** setTimeout's limit (~24.8 days); longer waits (90-day certificates) re-arm on firing. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Lifecycle of one identity's certificate (ztunnel's CertState). */
export type CertState =
  | { readonly phase: 'initializing' }
  | {
      readonly phase: 'available';
      readonly certificate: WorkloadCertificate;
      readonly serialNumber: string;
      /** When the next renewal (or retry) runs. */
      readonly nextFetchAt: number;
      /** Why the last renewal failed, while we keep serving this certificate. */
      readonly renewalError: IdentityError | null;
    }
  | { readonly phase: 'unavailable'; readonly error: IdentityError; readonly nextFetchAt: number };

export type CertificateEvent =
  | {
      readonly kind: 'rotated';
      readonly identity: SpiffeId;
      readonly certificate: WorkloadCertificate;
      readonly previous: WorkloadCertificate | null;
    }
  | {
      readonly kind: 'fetch-failed';
      readonly identity: SpiffeId;
      readonly error: IdentityError;
      readonly retryAt: number;
    }
  | { readonly kind: 'expired'; readonly identity: SpiffeId; readonly error: IdentityError }
  | { readonly kind: 'forgotten'; readonly identity: SpiffeId };

export interface CertificateSnapshot {
  readonly identity: string;
  readonly state: CertState['phase'];
  readonly serialNumber?: string;
  readonly notBefore?: string;
  readonly notAfter?: string;
  readonly nextFetchAt?: string;
  readonly error?: { readonly code: string; readonly message: string };
}

export interface CertManagerOptions {
  readonly source: CertificateSource;
  readonly clock?: CertClock;
  readonly log?: IdentityLog;
}

interface Entry {
  readonly identity: SpiffeId;
  state: CertState;
  inflight: Promise<WorkloadCertificate> | null;
  failures: number;
  timer: unknown;
}

export class CertificateManager {
  #source: CertificateSource;
  #clock: CertClock;
  #log: IdentityLog;
  #entries = new Map<string, Entry>();
  #listeners = new Set<(event: CertificateEvent) => void>();
  #closed = false;

  constructor(opts: CertManagerOptions) {
    this.#source = opts.source;
    this.#clock = opts.clock ?? SYSTEM_CLOCK;
    this.#log = opts.log ?? SILENT_LOG;
  }

  /** A valid certificate for `identity`, fetching it if needed. Rejects with IdentityError FERRY_CERT_*. */
  async getCertificate(identity: SpiffeId): Promise<WorkloadCertificate> {
    if (this.#closed) throw closedError();
    const entry = this.#ensure(identity);
    if (entry.state.phase === 'available') {
      if (this.#clock.now() < entry.state.certificate.notAfter.getTime()) return entry.state.certificate;
      this.#markExpired(entry); // timers can run late; never serve an expired certificate
    }
    if (entry.inflight !== null) return entry.inflight;
    if (entry.state.phase === 'unavailable') throw entry.state.error;
    return this.#fetch(entry); // unreachable in practice: initializing always has a fetch in flight
  }

  /** Prefetches certificates for the identities of local workloads and forgets every other identity. */
  setLocalIdentities(identities: Iterable<SpiffeId>): void {
    if (this.#closed) throw closedError();
    const wanted = new Map<string, SpiffeId>();
    for (const id of identities) wanted.set(formatSpiffeId(id), id);
    for (const [key, entry] of this.#entries) if (!wanted.has(key)) this.#forget(key, entry);
    for (const id of wanted.values()) this.#ensure(id);
  }

  /** Drops an identity: no more renewals; an in-flight fetch's result is discarded. */
  forget(identity: SpiffeId): void {
    const key = formatSpiffeId(identity);
    const entry = this.#entries.get(key);
    if (entry !== undefined) this.#forget(key, entry);
  }

  /** Subscribes to rotations, failures, expiries and forgets. Dispose to unsubscribe. */
  onEvent(listener: (event: CertificateEvent) => void): Disposable {
    this.#listeners.add(listener);
    return { [Symbol.dispose]: () => this.#listeners.delete(listener) };
  }

  /** Per identity: state, serial and validity (for /config_dump). */
  snapshot(): CertificateSnapshot[] {
    return [...this.#entries].map(([identity, entry]) => snapshotOf(identity, entry.state));
  }

  /** Stops all timers; later calls reject with FERRY_CERT_MANAGER_CLOSED. */
  close(): void {
    this.#closed = true;
    for (const entry of this.#entries.values()) this.#clearTimer(entry);
    this.#entries.clear();
    this.#listeners.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #ensure(identity: SpiffeId): Entry {
    const key = formatSpiffeId(identity);
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = { identity, state: { phase: 'initializing' }, inflight: null, failures: 0, timer: null };
      this.#entries.set(key, entry);
      this.#fetch(entry).catch(ignoreHandledFailure);
    }
    return entry;
  }

  /** Starts (or joins) the one fetch of this entry. */
  #fetch(entry: Entry): Promise<WorkloadCertificate> {
    if (entry.inflight !== null) return entry.inflight;
    this.#clearTimer(entry);
    // Handlers clear `inflight` before emitting events, so a listener that re-arms sees no stale fetch.
    const started = new Promise<WorkloadCertificate>((resolve) => resolve(this.#source.fetch(entry.identity)));
    const inflight = started.then(
      (cert) => {
        entry.inflight = null;
        return this.#onFetched(entry, cert);
      },
      (err: unknown) => {
        entry.inflight = null;
        return this.#onFailed(entry, err);
      },
    );
    entry.inflight = inflight;
    return inflight;
  }

  #onFetched(entry: Entry, cert: WorkloadCertificate): WorkloadCertificate {
    const now = this.#clock.now();
    const notBefore = cert.notBefore.getTime();
    const notAfter = cert.notAfter.getTime();
    if (!(notAfter > now && notAfter > notBefore)) {
      const id = formatSpiffeId(entry.identity);
      return this.#onFailed(
        entry,
        new IdentityError(
          'FERRY_CA_RESPONSE_INVALID',
          `certificate for ${id} is not valid now (until ${cert.notAfter.toISOString()})`,
        ),
      );
    }
    if (!this.#isCurrent(entry)) return cert; // forgotten meanwhile: hand it to waiters, keep nothing
    const previous = entry.state.phase === 'available' ? entry.state.certificate : null;
    // Renew at half-life (ztunnel), but never spin if the CA hands out certificates already past it.
    const refreshAt = Math.max(notBefore + (notAfter - notBefore) / 2, now + INITIAL_BACKOFF_MS);
    entry.failures = 0;
    entry.state = {
      phase: 'available',
      certificate: cert,
      serialNumber: serialOf(cert),
      nextFetchAt: refreshAt,
      renewalError: null,
    };
    this.#arm(entry, refreshAt);
    this.#log.info(
      {
        identity: formatSpiffeId(entry.identity),
        serial: entry.state.serialNumber,
        notAfter: cert.notAfter.toISOString(),
      },
      previous === null ? 'certificate issued' : 'certificate rotated',
    );
    this.#emit({ kind: 'rotated', identity: entry.identity, certificate: cert, previous });
    return cert;
  }

  #onFailed(entry: Entry, err: unknown): never {
    const id = formatSpiffeId(entry.identity);
    const cause =
      err instanceof IdentityError
        ? err
        : new IdentityError('FERRY_CERT_FETCH_FAILED', `fetch failed: ${String(err)}`, { cause: err });
    if (!this.#isCurrent(entry)) throw cause;
    entry.failures++;
    const now = this.#clock.now();
    let retryAt = now + Math.min(INITIAL_BACKOFF_MS * 2 ** (entry.failures - 1), MAX_BACKOFF_MS);
    const state = entry.state;
    let error: IdentityError;
    if (state.phase === 'available' && now < state.certificate.notAfter.getTime()) {
      // Keep serving; retry no later than expiry, so the switch to "expired" happens on time.
      retryAt = Math.min(retryAt, state.certificate.notAfter.getTime());
      entry.state = { ...state, nextFetchAt: retryAt, renewalError: cause };
      error = cause;
    } else {
      if (state.phase === 'available') this.#markExpired(entry);
      const prior = entry.state;
      error =
        prior.phase === 'unavailable' && prior.error.code === 'FERRY_CERT_EXPIRED'
          ? new IdentityError('FERRY_CERT_EXPIRED', `${prior.error.message}; renewal failed: ${cause.message}`, {
              cause,
            })
          : new IdentityError('FERRY_CERT_FETCH_FAILED', `no certificate for ${id}: ${cause.message}`, { cause });
      entry.state = { phase: 'unavailable', error, nextFetchAt: retryAt };
    }
    this.#arm(entry, retryAt);
    this.#log.warn(
      {
        identity: id,
        code: cause.code,
        attempt: entry.failures,
        retryAt: new Date(retryAt).toISOString(),
        reason: cause.message,
      },
      'certificate fetch failed',
    );
    this.#emit({ kind: 'fetch-failed', identity: entry.identity, error: cause, retryAt });
    throw error;
  }

  #markExpired(entry: Entry): void {
    const state = entry.state;
    if (state.phase !== 'available') return;
    const id = formatSpiffeId(entry.identity);
    const error = new IdentityError(
      'FERRY_CERT_EXPIRED',
      `certificate for ${id} (serial ${state.serialNumber}) expired at ${state.certificate.notAfter.toISOString()}`,
      state.renewalError === null ? undefined : { cause: state.renewalError },
    );
    entry.state = { phase: 'unavailable', error, nextFetchAt: state.nextFetchAt };
    this.#log.error({ identity: id, serial: state.serialNumber }, 'certificate expired');
    this.#emit({ kind: 'expired', identity: entry.identity, error });
  }

  #arm(entry: Entry, dueAt: number): void {
    this.#clearTimer(entry);
    const delay = Math.min(Math.max(dueAt - this.#clock.now(), 0), MAX_TIMER_MS);
    entry.timer = this.#clock.setTimeout(() => this.#onTimer(entry, dueAt), delay);
  }

  #onTimer(entry: Entry, dueAt: number): void {
    entry.timer = null;
    if (!this.#isCurrent(entry)) return;
    if (this.#clock.now() < dueAt) {
      this.#arm(entry, dueAt); // a long wait split by MAX_TIMER_MS
      return;
    }
    if (entry.state.phase === 'available' && this.#clock.now() >= entry.state.certificate.notAfter.getTime()) {
      this.#markExpired(entry);
    }
    this.#fetch(entry).catch(ignoreHandledFailure);
  }

  #forget(key: string, entry: Entry): void {
    this.#clearTimer(entry);
    this.#entries.delete(key);
    this.#log.info({ identity: key }, 'certificate forgotten');
    this.#emit({ kind: 'forgotten', identity: entry.identity });
  }

  #isCurrent(entry: Entry): boolean {
    return !this.#closed && this.#entries.get(formatSpiffeId(entry.identity)) === entry;
  }

  #clearTimer(entry: Entry): void {
    if (entry.timer !== null) this.#clock.clearTimeout(entry.timer);
    entry.timer = null;
  }

  #emit(event: CertificateEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#log.error({ err, kind: event.kind }, 'certificate event listener threw');
      }
    }
  }
}

function snapshotOf(identity: string, state: CertState): CertificateSnapshot {
  switch (state.phase) {
    case 'initializing':
      return { identity, state: state.phase };
    case 'available':
      return {
        identity,
        state: state.phase,
        serialNumber: state.serialNumber,
        notBefore: state.certificate.notBefore.toISOString(),
        notAfter: state.certificate.notAfter.toISOString(),
        nextFetchAt: new Date(state.nextFetchAt).toISOString(),
        ...(state.renewalError === null
          ? {}
          : { error: { code: state.renewalError.code, message: state.renewalError.message } }),
      };
    case 'unavailable':
      return {
        identity,
        state: state.phase,
        nextFetchAt: new Date(state.nextFetchAt).toISOString(),
        error: { code: state.error.code, message: state.error.message },
      };
    default:
      return assertNever(state);
  }
}

function serialOf(cert: WorkloadCertificate): string {
  const leaf = cert.certChainPem[0];
  if (leaf === undefined) return 'none';
  try {
    return new X509Certificate(leaf).serialNumber;
  } catch {
    return 'unparseable';
  }
}

function closedError(): IdentityError {
  return new IdentityError('FERRY_CERT_MANAGER_CLOSED', 'certificate manager is closed');
}

/** Background fetches report through state, events and logs; their rejection has no other reader. */
function ignoreHandledFailure(): void {}

function assertNever(x: never): never {
  throw new Error(`unexpected state ${JSON.stringify(x)}`);
}
