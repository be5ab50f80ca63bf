// Admission for the CA's expensive work (CSR verification and signing): at most `maxConcurrent` requests
// work at once, at most `maxQueued` wait (FIFO), and the rest are shed at once, so a flood of requests can
// neither grow the CA's memory without bound nor push a waiting request past its client's deadline. Only
// authenticated callers get here (src/identity/ca-server.ts authenticates first), and one caller (a node)
// may hold at most `maxPerCaller` of the slots and queue places together, and a freed slot goes to the
// callers in turn (round robin over per-caller FIFO queues), so a flooding node cannot crowd the others
// out: another node waits for one signing, not for the flooder's whole queue. Pure counting: no timers, no I/O; a waiter whose signal aborts leaves the queue.
import { availableParallelism } from 'node:os';

export interface CaAdmissionLimits {
  /** Requests verifying or signing at the same time. Default: 2 × cores. */
  readonly maxConcurrent: number;
  /** Requests waiting for a slot; beyond it requests are shed (RESOURCE_EXHAUSTED). Default: 32 × maxConcurrent. */
  readonly maxQueued: number;
  /** Slots plus queue places one caller may hold. Default: a quarter of slots + queue. */
  readonly maxPerCaller?: number;
}

export function defaultCaAdmissionLimits(cores = availableParallelism()): CaAdmissionLimits {
  const maxConcurrent = Math.max(2, 2 * cores);
  // A signing takes a few ms of CPU: 32 queued per slot is well under a client's 10 s deadline.
  return { maxConcurrent, maxQueued: 32 * maxConcurrent };
}

function perCallerLimit(limits: CaAdmissionLimits): number {
  return limits.maxPerCaller ?? Math.max(1, Math.floor((limits.maxConcurrent + limits.maxQueued) / 4));
}

export type Admission =
  | { readonly kind: 'admitted'; readonly slot: Promise<Disposable> }
  | {
      readonly kind: 'shed';
      /** 'queue': every slot and queue place is taken; 'caller': this caller holds its share. */
      readonly reason: 'queue' | 'caller';
      readonly active: number;
      readonly queued: number;
    };

interface Waiter {
  readonly caller: string;
  readonly grant: (slot: Disposable) => void;
  readonly detach: () => void;
}

export class CaAdmission {
  readonly limits: CaAdmissionLimits;
  #active = 0;
  /** Per-caller FIFO queues; the Map's order is the round-robin order. */
  readonly #queues = new Map<string, Waiter[]>();
  #queued = 0;
  readonly #byCaller = new Map<string, number>();
  readonly #maxPerCaller: number;

  constructor(limits: CaAdmissionLimits) {
    if (!(Number.isInteger(limits.maxConcurrent) && limits.maxConcurrent >= 1)) {
      throw new RangeError(`maxConcurrent must be an integer ≥ 1, got ${limits.maxConcurrent}`);
    }
    if (!(Number.isInteger(limits.maxQueued) && limits.maxQueued >= 0)) {
      throw new RangeError(`maxQueued must be an integer ≥ 0, got ${limits.maxQueued}`);
    }
    this.limits = limits;
    this.#maxPerCaller = perCallerLimit(limits);
  }

  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#queued;
  }

  /**
   * A slot now, a place in the queue, or `shed` when the queue is full. The slot promise rejects with the
   * signal's reason when `signal` aborts while waiting. Dispose the slot when the work is done.
   */
  enter(signal?: AbortSignal, caller = ''): Admission {
    if (signal?.aborted === true) return { kind: 'admitted', slot: Promise.reject(signal.reason) };
    const held = this.#byCaller.get(caller) ?? 0;
    if (held >= this.#maxPerCaller) {
      return { kind: 'shed', reason: 'caller', active: this.#active, queued: this.#queued };
    }
    if (this.#active < this.limits.maxConcurrent) {
      this.#active++;
      this.#byCaller.set(caller, held + 1);
      return { kind: 'admitted', slot: Promise.resolve(this.#slot(caller)) };
    }
    if (this.#queued >= this.limits.maxQueued) {
      return { kind: 'shed', reason: 'queue', active: this.#active, queued: this.#queued };
    }
    this.#byCaller.set(caller, held + 1);
    const slot = new Promise<Disposable>((resolve, reject) => {
      const onAbort = (): void => {
        const queue = this.#queues.get(caller) ?? [];
        const i = queue.indexOf(waiter);
        if (i >= 0) {
          queue.splice(i, 1);
          this.#queued--;
          if (queue.length === 0) this.#queues.delete(caller);
        }
        this.#forget(caller);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        caller,
        grant: resolve,
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const queue = this.#queues.get(caller);
      if (queue === undefined) this.#queues.set(caller, [waiter]);
      else queue.push(waiter);
      this.#queued++;
    });
    return { kind: 'admitted', slot };
  }

  #slot(caller: string): Disposable {
    let released = false;
    return {
      [Symbol.dispose]: () => {
        if (released) return; // idempotent: a double dispose never frees two slots
        released = true;
        this.#forget(caller);
        this.#release();
      },
    };
  }

  /** The first waiter of the caller whose turn it is; that caller moves to the end of the rotation. */
  #nextWaiter(): Waiter | undefined {
    for (const [caller, queue] of this.#queues) {
      const next = queue.shift();
      this.#queues.delete(caller);
      if (next === undefined) continue;
      if (queue.length > 0) this.#queues.set(caller, queue); // re-inserted: last in the rotation
      this.#queued--;
      return next;
    }
    return undefined;
  }

  #forget(caller: string): void {
    const left = (this.#byCaller.get(caller) ?? 1) - 1;
    if (left <= 0) this.#byCaller.delete(caller);
    else this.#byCaller.set(caller, left);
  }

  #release(): void {
    const next = this.#nextWaiter();
    if (next === undefined) {
      this.#active--;
      return;
    }
    // The slot passes straight to the next waiter: #active stays the same.
    next.detach();
    next.grant(this.#slot(next.caller));
  }
}
