// The I/O loop around lease.ts: every `retryMs`, read the Lease, decide, write (create / renew / acquire
// with the resourceVersion read). Leading holds only while renewals succeed: a replica that cannot renew
// for `durationSeconds` stops leading by its own clock, before any other may take over. close() releases
// the lease (holder cleared) so a graceful shutdown hands over at once; a crashed leader's lease moves
// after `durationSeconds`. All replicas serve xDS and the CA regardless; only status writes follow this.

import type { Json, KubeClient } from '../../kube/client.ts';
import { KubeError } from '../../kube/errors.ts';
import type { Logger } from '../../runtime/logger.ts';
import { decideLease, isLeading, type LeaseObservation, type LeaseRecord, observe, parseLeaseSpec } from './lease.ts';

export interface LeaderElectionOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  /** Default 15 s. */
  readonly durationSeconds?: number;
  /** How often to renew or retry; default 2 s. */
  readonly retryMs?: number;
  /** Called when this replica starts or stops leading. */
  readonly onChange?: (leading: boolean) => void;
}

export class LeaderElector {
  readonly #opts: LeaderElectionOptions;
  readonly #duration: number;
  #observed: LeaseObservation | null = null;
  #lastRenewMs: number | null = null;
  #leading = false;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #round: Promise<void> = Promise.resolve();

  constructor(opts: LeaderElectionOptions) {
    this.#opts = opts;
    this.#duration = opts.durationSeconds ?? 15;
  }

  get identity(): string {
    return this.#opts.identity;
  }

  /** Leads now (renewed within the lease duration). */
  get leading(): boolean {
    return isLeading(this.#lastRenewMs, this.#duration, Date.now()) && this.#leading;
  }

  start(): void {
    const tick = () => {
      this.#round = this.#tryOnce().finally(() => {
        if (!this.#closed) this.#timer = setTimeout(tick, this.#opts.retryMs ?? 2000);
      });
    };
    tick();
  }

  /** Stops; with `release` (graceful), clears the holder so another replica takes over at once. */
  async close(opts: { readonly release?: boolean } = {}): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    await this.#round;
    const wasLeading = this.leading;
    this.#set(false);
    if (opts.release !== false && wasLeading && this.#observed !== null) {
      const rec: LeaseRecord = { ...this.#observed.record, holderIdentity: null, renewTime: null, acquireTime: null };
      await this.#put(rec, this.#observed.resourceVersion).catch(() => undefined);
    }
  }

  get #path(): string {
    const { namespace, name } = this.#opts;
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases/${encodeURIComponent(name)}`;
  }

  async #tryOnce(): Promise<void> {
    const now = Date.now();
    try {
      const current = await this.#read();
      const decision = decideLease(current, this.#observed, this.#opts.identity, this.#duration, now);
      if (current !== null) this.#observed = observe(current, this.#observed, now);
      switch (decision.action) {
        case 'create':
          this.#accept(await this.#create(decision.record), now);
          break;
        case 'renew':
        case 'acquire':
          this.#accept(await this.#put(decision.record, decision.resourceVersion), now);
          if (decision.action === 'acquire') this.#opts.log.info({ lease: this.#opts.name }, 'leader lease acquired');
          break;
        case 'wait':
          this.#set(false);
          break;
      }
    } catch (err) {
      // 409: another replica wrote first; anything else: the API is away. Either way, not renewed now.
      if (!(err instanceof KubeError && err.status === 409)) {
        this.#opts.log.warn({ error: String((err as Error).message) }, 'leader lease not renewed');
      }
    }
    if (!isLeading(this.#lastRenewMs, this.#duration, Date.now())) this.#set(false);
  }

  #accept(obj: Json, now: number): void {
    this.#observed = observe(
      { record: parseLeaseSpec(obj.spec), resourceVersion: resourceVersionOf(obj) },
      this.#observed,
      now,
    );
    this.#lastRenewMs = now;
    this.#set(true);
  }

  #set(leading: boolean): void {
    if (this.#leading === leading) return;
    this.#leading = leading;
    if (!leading) this.#lastRenewMs = null;
    this.#opts.log.info({ lease: this.#opts.name, identity: this.#opts.identity, leading }, 'leadership changed');
    this.#opts.onChange?.(leading);
  }

  async #read(): Promise<{ record: LeaseRecord; resourceVersion: string } | null> {
    try {
      const obj = await this.#opts.client.get(this.#path);
      return { record: parseLeaseSpec(obj.spec), resourceVersion: resourceVersionOf(obj) };
    } catch (err) {
      if (err instanceof KubeError && err.status === 404) return null;
      throw err;
    }
  }

  #create(record: LeaseRecord): Promise<Json> {
    const { namespace, name } = this.#opts;
    return this.#opts.client.request(
      'POST',
      `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`,
      {
        json: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: record },
      },
    );
  }

  #put(record: LeaseRecord, resourceVersion: string): Promise<Json> {
    const { namespace, name } = this.#opts;
    return this.#opts.client.request('PUT', this.#path, {
      json: {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace, resourceVersion },
        spec: record,
      },
    });
  }
}

function resourceVersionOf(obj: Json): string {
  const m = obj.metadata;
  return typeof m === 'object' && m !== null && typeof (m as Json).resourceVersion === 'string'
    ? String((m as Json).resourceVersion)
    : '';
}
