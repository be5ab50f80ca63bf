// Writes the statuses Ferry owns (desired-status.ts) through the `/status` subresource, only while this
// replica leads (leader-election.ts). Each object is compared first with the status the informer last saw:
// equal (lastTransitionTime aside) means no request at all. A write carries the resourceVersion it was
// computed from; a 409 Conflict re-reads the object, recomputes and retries (bounded), so a concurrent
// writer never loses its change and no stale status overwrites a newer one. Syncs run one at a time; a
// sync asked for while one runs is run once more afterwards with the newest inputs.

import type { Json, KubeClient } from '../../kube/client.ts';
import { KubeError } from '../../kube/errors.ts';
import type { Logger } from '../../runtime/logger.ts';
import { objectPath, watchedKind } from '../sources/kube-resources.ts';
import type { K8sKind } from '../sources/types.ts';
import { type DesiredStatus, planStatusWrite, shouldRetryStatusWrite } from './desired-status.ts';

export interface StatusWriterOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  /** The object as the informer last saw it. */
  readonly stored: (kind: K8sKind, namespace: string, name: string) => Json | undefined;
  /** The version of the kind being watched (its status is written through the same version). */
  readonly version: (kind: K8sKind) => string | undefined;
  readonly now?: () => Date;
}

export interface StatusSyncResult {
  readonly written: number;
  readonly unchanged: number;
  readonly failed: number;
}

export class StatusWriter {
  readonly #opts: StatusWriterOptions;
  #running: Promise<void> | null = null;
  #pending: readonly DesiredStatus[] | null = null;
  #writes = 0;
  #last: StatusSyncResult = { written: 0, unchanged: 0, failed: 0 };

  constructor(opts: StatusWriterOptions) {
    this.#opts = opts;
  }

  /** Status writes made so far (each PUT that succeeded). */
  get writes(): number {
    return this.#writes;
  }

  get lastSync(): StatusSyncResult {
    return this.#last;
  }

  /** Brings every object's status to `desired`; resolves when this (or a newer) sync is done. */
  sync(desired: readonly DesiredStatus[]): Promise<void> {
    this.#pending = desired;
    this.#running ??= this.#drain().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #drain(): Promise<void> {
    while (this.#pending !== null) {
      const desired = this.#pending;
      this.#pending = null;
      let written = 0;
      let unchanged = 0;
      let failed = 0;
      for (const d of desired) {
        try {
          if (await this.#write(d)) written++;
          else unchanged++;
        } catch (err) {
          failed++;
          this.#opts.log.warn(
            { kind: d.kind, namespace: d.namespace, name: d.name, error: String((err as Error).message) },
            'status write failed',
          );
        }
      }
      this.#last = { written, unchanged, failed };
    }
  }

  /** One object; true when a write was made. */
  async #write(d: DesiredStatus): Promise<boolean> {
    const version = this.#opts.version(d.kind);
    if (version === undefined) return false; // the kind is not served (any more)
    const path = objectPath(watchedKind(d.kind), version, d.namespace, d.name);
    let stored: Json | undefined = this.#opts.stored(d.kind, d.namespace, d.name);
    for (let attempt = 0; ; attempt++) {
      const now = (this.#opts.now?.() ?? new Date()).toISOString().replace(/\.\d+Z$/, 'Z');
      const plan = planStatusWrite(d.kind, stored, d.status, now);
      if (!plan.write) return false;
      const apiVersion = watchedKind(d.kind).group === '' ? version : `${watchedKind(d.kind).group}/${version}`;
      try {
        await this.#opts.client.request('PUT', `${path}/status`, {
          json: {
            apiVersion,
            kind: d.kind,
            metadata: {
              name: d.name,
              ...(d.namespace === '' ? {} : { namespace: d.namespace }),
              resourceVersion: plan.resourceVersion,
            },
            status: plan.status,
          },
        });
        this.#writes++;
        return true;
      } catch (err) {
        const status = err instanceof KubeError ? err.status : 0;
        if (!shouldRetryStatusWrite(status, attempt)) throw err;
        // Someone wrote in between (another replica, a user, the spec changed): read again and recompute.
        stored = await this.#opts.client.get(path).catch((e: unknown) => {
          if (e instanceof KubeError && e.status === 404) return undefined;
          throw e;
        });
      }
    }
  }
}
