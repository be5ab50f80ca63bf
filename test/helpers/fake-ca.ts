// Fakes for identity tests: a manual clock whose timers fire only when the test advances time, and an
// in-process CA behind the CertificateSource interface (real CSRs, real signing) that can be switched
// "down" and counts its fetches. No sleeps: tests advance the clock and await certificate events.
import { CertificateAuthority } from '../../src/identity/ca.ts';
import type {
  CertClock,
  CertificateEvent,
  CertificateManager,
  CertificateSource,
} from '../../src/identity/cert-manager.ts';
import { IdentityError } from '../../src/identity/errors.ts';
import { LocalCaSource } from '../../src/identity/local-ca-source.ts';
import type { SpiffeId } from '../../src/identity/spiffe-id.ts';
import type { WorkloadCertificate } from '../../src/identity/workload-certificate.ts';

interface Timer {
  readonly id: number;
  readonly dueAt: number;
  readonly fn: () => void;
}

export class ManualClock implements CertClock {
  #now: number;
  #timers = new Map<number, Timer>();
  #nextId = 1;

  constructor(startMs = Date.parse('2030-01-01T00:00:00Z')) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, delayMs: number): unknown {
    const id = this.#nextId++;
    this.#timers.set(id, { id, dueAt: this.#now + Math.max(0, delayMs), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Due times of pending timers, earliest first. */
  pending(): number[] {
    return [...this.#timers.values()].map((t) => t.dueAt).sort((a, b) => a - b);
  }

  /** Moves time forward, firing due timers in order (each at its own due time). */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      const next = [...this.#timers.values()].sort((a, b) => a.dueAt - b.dueAt || a.id - b.id)[0];
      if (next === undefined || next.dueAt > target) break;
      this.#timers.delete(next.id);
      this.#now = Math.max(this.#now, next.dueAt);
      next.fn();
    }
    this.#now = target;
  }

  /** Jumps to the earliest pending timer and fires it. */
  advanceToNextTimer(): void {
    const [next] = this.pending();
    if (next === undefined) throw new Error('no pending timer');
    this.advance(next - this.#now);
  }
}

export interface InProcessCaOptions {
  readonly trustDomain?: string;
  readonly clock: CertClock;
  readonly ttlSeconds?: number;
}

/** A real CA in this process behind CertificateSource, with a failure switch and a fetch counter. */
export class InProcessCaSource implements CertificateSource {
  readonly ca: CertificateAuthority;
  down = false;
  fetches = 0;
  readonly #source: LocalCaSource;

  private constructor(ca: CertificateAuthority, ttlSeconds: number) {
    this.ca = ca;
    this.#source = new LocalCaSource(ca, ttlSeconds);
  }

  static async create(opts: InProcessCaOptions): Promise<InProcessCaSource> {
    const ca = await CertificateAuthority.generate({
      trustDomain: opts.trustDomain ?? 'cluster.local',
      now: () => opts.clock.now(),
    });
    return new InProcessCaSource(ca, opts.ttlSeconds ?? 0);
  }

  #inflight = new Set<Promise<unknown>>();

  fetch(identity: SpiffeId): Promise<WorkloadCertificate> {
    const p = this.#issue(identity);
    const tracked = p.then(
      () => {},
      () => {},
    );
    this.#inflight.add(tracked);
    void tracked.then(() => this.#inflight.delete(tracked));
    return p;
  }

  /** Resolves once every fetch started so far has settled (the manager's handlers then run first). */
  async settled(): Promise<void> {
    await Promise.all([...this.#inflight]);
  }

  async #issue(identity: SpiffeId): Promise<WorkloadCertificate> {
    this.fetches++;
    if (this.down) throw new IdentityError('FERRY_CA_UNREACHABLE', 'in-process CA is down');
    return this.#source.fetch(identity);
  }
}

/** Resolves with the next event of `kind` from the manager. */
export function nextEvent<K extends CertificateEvent['kind']>(
  manager: CertificateManager,
  kind: K,
): Promise<Extract<CertificateEvent, { kind: K }>> {
  return new Promise((resolve) => {
    const sub = manager.onEvent((e) => {
      if (e.kind !== kind) return;
      sub[Symbol.dispose]();
      resolve(e as Extract<CertificateEvent, { kind: K }>);
    });
  });
}

/** Resolves with the next `count` events of `kind`. */
export function collectEvents<K extends CertificateEvent['kind']>(
  manager: CertificateManager,
  kind: K,
  count: number,
): Promise<Extract<CertificateEvent, { kind: K }>[]> {
  const seen: Extract<CertificateEvent, { kind: K }>[] = [];
  return new Promise((resolve) => {
    const sub = manager.onEvent((e) => {
      if (e.kind !== kind) return;
      seen.push(e as Extract<CertificateEvent, { kind: K }>);
      if (seen.length < count) return;
      sub[Symbol.dispose]();
      resolve(seen);
    });
  });
}
