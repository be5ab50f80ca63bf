// Graceful drain, one per process (istio/ztunnel:src/drain.rs, `DrainMode::{Graceful, Immediate}`):
// trigger() aborts `signal` (listeners stop accepting, pools send GOAWAY), waits for tracked work until a
// deadline, then aborts `forceSignal` (live connections are torn down). `drained` resolves once all work
// ended or the force signal fired. Triggering is idempotent; an 'immediate' trigger escalates a graceful
// drain already running. This module only signals: it owns no sockets.
import { RuntimeError } from './errors.ts';

export type DrainMode = 'graceful' | 'immediate';

export interface DrainOutcome {
  /** True when the deadline (or an immediate drain) cut work short. */
  readonly forced: boolean;
  /** Tracked work items still running when the drain finished (0 unless forced). */
  readonly remaining: number;
}

export interface DrainOptions {
  /** How long tracked work may run after `signal` aborts. 0 = force at once. */
  readonly deadlineMs: number;
  readonly mode?: DrainMode;
}

type DrainState =
  | { readonly phase: 'running' }
  | { readonly phase: 'draining'; readonly timer: ReturnType<typeof setTimeout> | null }
  | { readonly phase: 'done'; readonly outcome: DrainOutcome };

export class DrainController {
  readonly #stop = new AbortController();
  readonly #force = new AbortController();
  #state: DrainState = { phase: 'running' };
  #active = 0;
  readonly #drained: Promise<DrainOutcome>;
  #resolve!: (outcome: DrainOutcome) => void;

  constructor() {
    this.#drained = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  /** Aborted when the drain starts: stop accepting new work. Reason: RuntimeError FERRY_RUNTIME_DRAINING. */
  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  /** Aborted at the deadline or on an immediate drain: end remaining work now. Reason: FERRY_RUNTIME_DRAIN_DEADLINE. */
  get forceSignal(): AbortSignal {
    return this.#force.signal;
  }

  /** Resolves when the drain has finished (never before trigger()). */
  get drained(): Promise<DrainOutcome> {
    return this.#drained;
  }

  get phase(): DrainState['phase'] {
    return this.#state.phase;
  }

  /** Work items still running. */
  get active(): number {
    return this.#active;
  }

  /**
   * Registers a unit of work (a connection, a stream) the drain waits for; dispose it when the work ends.
   * Allowed while draining (work accepted just before the stop); throws FERRY_RUNTIME_DRAINED once done.
   */
  track(): Disposable {
    if (this.#state.phase === 'done') {
      throw new RuntimeError('FERRY_RUNTIME_DRAINED', 'process has drained: no new work may start');
    }
    this.#active++;
    let released = false;
    return {
      [Symbol.dispose]: () => {
        if (released) return;
        released = true;
        this.#active--;
        if (this.#active === 0 && this.#state.phase === 'draining') this.#finish(false);
      },
    };
  }

  /** Starts (or escalates) the drain; resolves like `drained`. */
  trigger(opts: DrainOptions): Promise<DrainOutcome> {
    const immediate = opts.mode === 'immediate' || opts.deadlineMs <= 0;
    switch (this.#state.phase) {
      case 'running': {
        this.#stop.abort(new RuntimeError('FERRY_RUNTIME_DRAINING', 'process is draining'));
        if (this.#active === 0) {
          this.#finish(false);
        } else if (immediate) {
          this.#state = { phase: 'draining', timer: null };
          this.#forceNow('immediate drain');
        } else {
          // Not unref'd: this timer is the shutdown deadline, the process must stay up until it fires.
          const timer = setTimeout(DrainController.#onDeadline, opts.deadlineMs, this, opts.deadlineMs);
          this.#state = { phase: 'draining', timer };
        }
        break;
      }
      case 'draining':
        // A second graceful trigger keeps the first deadline; an immediate one escalates.
        if (immediate) this.#forceNow('immediate drain requested while draining');
        break;
      case 'done':
        break;
      default:
        assertNever(this.#state);
    }
    return this.#drained;
  }

  // Static so the timer holds no closure (STYLE.md §5: pass arguments, not closures).
  static #onDeadline(this: void, drain: DrainController, deadlineMs: number): void {
    if (drain.#state.phase === 'draining') drain.#forceNow(`drain deadline of ${deadlineMs} ms passed`);
  }

  #forceNow(why: string): void {
    this.#force.abort(new RuntimeError('FERRY_RUNTIME_DRAIN_DEADLINE', `${why}: closing remaining work`));
    this.#finish(true);
  }

  #finish(forced: boolean): void {
    if (this.#state.phase === 'draining' && this.#state.timer !== null) clearTimeout(this.#state.timer);
    const outcome: DrainOutcome = { forced, remaining: forced ? this.#active : 0 };
    this.#state = { phase: 'done', outcome };
    // Work that was never forced still gets the force signal at the end, so per-connection listeners
    // joined with AbortSignal.any() always see one final abort.
    if (!this.#force.signal.aborted) {
      this.#force.abort(new RuntimeError('FERRY_RUNTIME_DRAIN_DEADLINE', 'drain finished'));
    }
    this.#resolve(outcome);
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected drain state ${JSON.stringify(value)}`);
}
