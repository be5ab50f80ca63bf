// MeshStore: the one mutable holder of the ztunnel's current MeshView. Fed by the static-file loader now
// and by the xDS client later; read by the proxies (one `view` read per connection) and the admin dump.
// Invariant: `replace` indexes the whole new config before anything changes, then swaps the reference in
// one assignment, so a reader never sees a half-applied update (docs/architecture.md "Configuration distribution (delta xDS)").
import { buildMeshView, type MeshView } from './mesh-view.ts';
import type { MeshConfig } from './types.ts';

export type MeshChangeListener = (next: MeshView, previous: MeshView) => void;

export interface MeshStoreOptions {
  /** Starting config (default: empty, version 0). */
  readonly initial?: MeshConfig;
  /**
   * Called when a change listener throws. Default: after every listener ran, `replace` throws an
   * AggregateError (the new view is already in place: a listener bug must not undo an update).
   */
  readonly onListenerError?: (error: unknown) => void;
}

const EMPTY_CONFIG: MeshConfig = { workloads: [], services: [], policies: [] };

export class MeshStore {
  #view: MeshView;
  readonly #listeners = new Set<MeshChangeListener>();
  readonly #onListenerError: ((error: unknown) => void) | undefined;
  #notifying = false;

  constructor(options: MeshStoreOptions = {}) {
    this.#view = buildMeshView(options.initial ?? EMPTY_CONFIG, { version: 0 });
    this.#onListenerError = options.onListenerError;
  }

  /** The current snapshot. Hold on to it for the duration of one decision; never cache it longer. */
  get view(): MeshView {
    return this.#view;
  }

  /** Builds a view of `config` with the next version, swaps it in, then tells every listener. */
  replace(config: MeshConfig): MeshView {
    // A listener that replaces again would make later listeners see versions out of order.
    if (this.#notifying) throw new Error('MeshStore.replace called from a change listener');
    const previous = this.#view;
    const next = buildMeshView(config, { version: previous.version + 1 }); // may throw: nothing changed yet
    this.#view = next;
    this.#notify(next, previous);
    return next;
  }

  /** Subscribes to view changes; dispose the result to unsubscribe. */
  onChange(listener: MeshChangeListener): Disposable {
    // A fresh wrapper per subscription, so subscribing one function twice yields two independent handles.
    const entry: MeshChangeListener = (next, previous) => listener(next, previous);
    this.#listeners.add(entry);
    return {
      [Symbol.dispose]: () => {
        this.#listeners.delete(entry);
      },
    };
  }

  #notify(next: MeshView, previous: MeshView): void {
    const errors: unknown[] = [];
    this.#notifying = true;
    try {
      for (const listener of [...this.#listeners]) {
        if (!this.#listeners.has(listener)) continue; // unsubscribed by an earlier listener
        try {
          listener(next, previous);
        } catch (error) {
          if (this.#onListenerError !== undefined) this.#onListenerError(error);
          else errors.push(error);
        }
      }
    } finally {
      this.#notifying = false;
    }
    if (errors.length > 0) throw new AggregateError(errors, `${errors.length} mesh change listener(s) failed`);
  }
}
