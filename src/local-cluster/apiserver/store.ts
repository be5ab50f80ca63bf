// The object store: every object by storage key (`apps/deployments`) and `namespace/name`, one global
// monotonic resourceVersion (one per changed object, as etcd revisions), and a bounded history of change
// events that watches replay from. A change is applied in memory at once (so the next request sees it and
// conflicts are detected), written to the write-ahead log, and only once durable is it published to
// watchers and acknowledged. Stored objects are never mutated: every change stores a new object.
import { ApiServerError } from './errors.ts';
import { metaOf, type Obj, own } from './json.ts';
import type { WriteAheadLog } from './wal.ts';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoredEvent {
  readonly rv: number;
  readonly type: EventType;
  /** Storage key of the resource (`/pods`, `apps/deployments`). */
  readonly skey: string;
  readonly object: Obj;
  /** The object before the change (null for ADDED): watches with selectors need both sides. */
  readonly prev: Obj | null;
}

export type Change =
  | { readonly op: 'put'; readonly skey: string; readonly object: Obj }
  | { readonly op: 'delete'; readonly skey: string; readonly namespace: string; readonly name: string };

export type Listener = (event: StoredEvent) => void;

interface RecordOp {
  readonly t: 'put' | 'del';
  readonly k: string;
  readonly o: Obj;
}

export interface StoreOptions {
  /** Events kept for watches that resume from a resourceVersion; older ones answer 410 Gone. */
  readonly historyLimit: number;
  /** Compact the log into a snapshot once it is this large. */
  readonly compactBytes: number;
}

export function idOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function idOfObject(o: Obj): string {
  const m = metaOf(o);
  const ns = own(m, 'namespace');
  return idOf(typeof ns === 'string' ? ns : '', String(own(m, 'name')));
}

export class ObjectStore {
  readonly #objects = new Map<string, Map<string, Obj>>();
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #anyListeners = new Set<Listener>();
  #history: StoredEvent[] = [];
  /** Every event with rv > this is in #history. */
  #historyStartRv = 0;
  #rv = 0;
  #wal: WriteAheadLog | null = null;
  #lastPublished: Promise<unknown> = Promise.resolve();
  readonly #opts: StoreOptions;

  constructor(opts: StoreOptions) {
    this.#opts = opts;
  }

  get resourceVersion(): number {
    return this.#rv;
  }

  get oldestWatchableRv(): number {
    return this.#historyStartRv;
  }

  /** Loads snapshot + log records (replayed into the history too), then persists new changes to `wal`. */
  restore(snapshot: string | null, records: readonly string[], wal: WriteAheadLog, file: string): void {
    if (snapshot !== null) {
      let parsed: { rv: number; objects: { k: string; o: Obj }[] };
      try {
        parsed = JSON.parse(snapshot) as typeof parsed;
      } catch (err) {
        throw new ApiServerError('FERRY_APISERVER_WAL_CORRUPT', `${file}/snapshot.json: not valid JSON`, {
          cause: err,
        });
      }
      for (const { k, o } of parsed.objects) this.#bucket(k).set(idOfObject(o), o);
      this.#rv = parsed.rv;
      this.#historyStartRv = parsed.rv;
    }
    records.forEach((text, i) => {
      let rec: { rv: number; ops: RecordOp[] };
      try {
        rec = JSON.parse(text) as typeof rec;
      } catch (err) {
        throw new ApiServerError('FERRY_APISERVER_WAL_CORRUPT', `${file}/wal.log: record ${i} is not valid JSON`, {
          cause: err,
        });
      }
      if (rec.rv <= this.#rv) return; // already in the snapshot
      for (const op of rec.ops) {
        const rv = Number(own(metaOf(op.o), 'resourceVersion'));
        const event = this.#applyInMemory(
          op.t === 'put' ? { op: 'put', skey: op.k, object: op.o } : deleteOf(op.k, op.o),
          rv,
        );
        if (event !== null) this.#remember(event);
      }
      this.#rv = rec.rv;
    });
    this.#wal = wal;
  }

  get(skey: string, namespace: string, name: string): Obj | undefined {
    return this.#objects.get(skey)?.get(idOf(namespace, name));
  }

  /** Objects of a resource (in one namespace, or all when namespace is undefined), sorted by namespace/name. */
  list(skey: string, namespace?: string): Obj[] {
    const bucket = this.#objects.get(skey);
    if (bucket === undefined) return [];
    const out: [string, Obj][] = [];
    const prefix = namespace === undefined ? null : `${namespace}/`;
    for (const [id, o] of bucket) if (prefix === null || id.startsWith(prefix)) out.push([id, o]);
    out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return out.map(([, o]) => o);
  }

  count(skey: string): number {
    return this.#objects.get(skey)?.size ?? 0;
  }

  /**
   * Applies changes atomically (one log record), stamping each changed object with the next resourceVersion;
   * resolves with the events once durable. `put` objects must carry final metadata except resourceVersion.
   */
  async commit(changes: readonly Change[]): Promise<StoredEvent[]> {
    const wal = this.#wal;
    if (wal === null) throw new ApiServerError('FERRY_APISERVER_WAL_FAILED', 'store is not open');
    const events: StoredEvent[] = [];
    for (const c of changes) {
      const event = this.#applyInMemory(c, this.#rv + 1);
      if (event === null) continue;
      this.#rv = event.rv;
      events.push(event);
    }
    if (events.length === 0) return events;
    const ops: RecordOp[] = events.map((e) => ({ t: e.type === 'DELETED' ? 'del' : 'put', k: e.skey, o: e.object }));
    const durable = wal.append(JSON.stringify({ rv: this.#rv, ops }));
    // Publication is chained here, not after the caller's await, so watchers see records in log order.
    const published = durable.then(() => {
      for (const e of events) this.#publish(e);
    });
    this.#lastPublished = published.catch(() => undefined);
    if (wal.sizeBytes > this.#opts.compactBytes) wal.requestCompaction(() => this.#snapshotText());
    await published;
    return events;
  }

  #applyInMemory(c: Change, rv: number): StoredEvent | null {
    const bucket = this.#bucket(c.skey);
    if (c.op === 'put') {
      const id = idOfObject(c.object);
      const prev = bucket.get(id) ?? null;
      const object = withResourceVersion(c.object, rv);
      bucket.set(id, object);
      return { rv, type: prev === null ? 'ADDED' : 'MODIFIED', skey: c.skey, object, prev };
    }
    const id = idOf(c.namespace, c.name);
    const prev = bucket.get(id);
    if (prev === undefined) return null;
    bucket.delete(id);
    return { rv, type: 'DELETED', skey: c.skey, object: withResourceVersion(prev, rv), prev };
  }

  #bucket(skey: string): Map<string, Obj> {
    let b = this.#objects.get(skey);
    if (b === undefined) {
      b = new Map();
      this.#objects.set(skey, b);
    }
    return b;
  }

  #remember(e: StoredEvent): void {
    this.#history.push(e);
    const limit = this.#opts.historyLimit;
    // Trim in chunks (amortized O(1) per event) rather than shifting one element per event.
    if (this.#history.length > limit * 2) {
      const dropped = this.#history.splice(0, this.#history.length - limit);
      this.#historyStartRv = dropped[dropped.length - 1]?.rv ?? this.#historyStartRv;
    }
  }

  #publish(e: StoredEvent): void {
    this.#remember(e);
    // One failing subscriber (a watch whose socket broke) must not keep the event from the others.
    for (const l of [...(this.#listeners.get(e.skey) ?? []), ...this.#anyListeners]) {
      try {
        l(e);
      } catch {
        // That subscriber's watch broke; its close handler unsubscribes it. The others still get the event.
      }
    }
  }

  /**
   * Events of `skey` after `rv`, or 'expired' when some of them are no longer kept. Call subscribe() in the
   * same synchronous step so nothing falls between the history and the live events.
   */
  eventsSince(skey: string, rv: number): StoredEvent[] | 'expired' {
    if (rv < this.#historyStartRv) return 'expired';
    const h = this.#history;
    let lo = 0;
    let hi = h.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((h[mid] as StoredEvent).rv <= rv) lo = mid + 1;
      else hi = mid;
    }
    const out: StoredEvent[] = [];
    for (let i = lo; i < h.length; i++) if ((h[i] as StoredEvent).skey === skey) out.push(h[i] as StoredEvent);
    return out;
  }

  /** Highest resourceVersion published to watchers (changes in flight to the log are not). */
  get publishedRv(): number {
    return this.#history[this.#history.length - 1]?.rv ?? this.#historyStartRv;
  }

  subscribe(skey: string | null, l: Listener): () => void {
    if (skey === null) {
      this.#anyListeners.add(l);
      return () => this.#anyListeners.delete(l);
    }
    let set = this.#listeners.get(skey);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(skey, set);
    }
    set.add(l);
    return () => set.delete(l);
  }

  #snapshotText(): string {
    const objects: { k: string; o: Obj }[] = [];
    for (const [k, bucket] of this.#objects) for (const o of bucket.values()) objects.push({ k, o });
    return JSON.stringify({ rv: this.#rv, objects });
  }

  async close(): Promise<void> {
    await this.#wal?.close();
  }

  /**
   * Resolves when every change committed so far is durable and published (reads wait on it, so a reader
   * does not act on a write that could still be lost). Later commits do not delay it.
   */
  async durable(): Promise<void> {
    await this.#lastPublished;
  }
}

function deleteOf(skey: string, o: Obj): Change {
  const m = metaOf(o);
  const ns = own(m, 'namespace');
  return { op: 'delete', skey, namespace: typeof ns === 'string' ? ns : '', name: String(own(m, 'name')) };
}

function withResourceVersion(o: Obj, rv: number): Obj {
  return { ...o, metadata: { ...metaOf(o), resourceVersion: String(rv) } };
}
