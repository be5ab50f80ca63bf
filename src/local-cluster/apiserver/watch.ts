// Watch streams (`?watch=true`, `/watch/` paths): newline-delimited JSON events over a chunked response, as
// the real server sends them. Start: no or "0" resourceVersion → ADDED for every current object, then live
// events; a resourceVersion → the kept history after it, or one ERROR event with a 410 Expired Status and the
// end of the stream when that history is gone (clients then relist). Bookmarks on a timer when asked
// (`allowWatchBookmarks`), the end of `sendInitialEvents` marked by a bookmark, the stream closed after
// `timeoutSeconds`. A consumer that does not read is cut off once its unsent bytes pass a cap: a slow watcher
// must not make the server buffer without bound.
import type { ServerResponse } from 'node:http';
import type { Logger } from '../../runtime/logger.ts';
import { present, type Selection, selects } from './handlers.ts';
import { metaOf, type Obj, own } from './json.ts';
import { apiVersionOf, type ResourceType, storageKeyOf } from './resources.ts';
import { badRequest, expired, failure } from './status.ts';
import type { EventType, ObjectStore, StoredEvent } from './store.ts';

export interface WatchLimits {
  readonly maxWatchers: number;
  /** A watch ends after min(timeoutSeconds, this); real servers use 30–60 minutes. */
  readonly maxWatchMs: number;
  readonly bookmarkIntervalMs: number;
  /** Unsent bytes a watcher may have queued before it is disconnected. */
  readonly maxBufferedBytes: number;
}

export interface WatchParams {
  readonly t: ResourceType;
  /** '' for all namespaces. */
  readonly namespace: string;
  /** A watch of one object (`/watch/…/NAME`), else null. */
  readonly name: string | null;
  readonly selection: Selection;
  readonly query: URLSearchParams;
  /** How an event's object is sent (kubectl get -w asks for Tables); the identity by default. */
  readonly render?: (o: Obj, first: boolean) => unknown;
}

export class WatchHub {
  readonly #store: ObjectStore;
  readonly #limits: WatchLimits;
  readonly #log: Logger;
  readonly #open = new Set<ServerResponse>();
  /** How each open watch is ended: unsubscribe from the store first, then end the response. */
  readonly #enders = new Map<ServerResponse, () => void>();

  constructor(store: ObjectStore, limits: WatchLimits, log: Logger) {
    this.#store = store;
    this.#limits = limits;
    this.#log = log;
  }

  get count(): number {
    return this.#open.size;
  }

  /** Validates the parameters (throws an ApiError before any byte is sent), then streams. */
  serve(p: WatchParams, res: ServerResponse): void {
    if (this.#open.size >= this.#limits.maxWatchers) {
      throw failure(429, 'TooManyRequests', `too many open watches (${this.#limits.maxWatchers}); retry later`, {
        retryAfterSeconds: 1,
      });
    }
    const rvText = p.query.get('resourceVersion') ?? '';
    const fromRv = rvText === '' || rvText === '0' ? null : parseRv(rvText);
    const timeoutSeconds = p.query.get('timeoutSeconds');
    let timeoutMs = this.#limits.maxWatchMs;
    if (timeoutSeconds !== null) {
      if (!/^[0-9]{1,9}$/.test(timeoutSeconds)) throw badRequest(`timeoutSeconds: not a number: ${timeoutSeconds}`);
      if (Number(timeoutSeconds) > 0) timeoutMs = Math.min(timeoutMs, Number(timeoutSeconds) * 1000);
    }
    const bookmarks = p.query.get('allowWatchBookmarks') === 'true';
    const initialEvents = p.query.get('sendInitialEvents') === 'true';
    const t = p.t;
    const skey = storageKeyOf(t);
    const matches = (o: Obj): boolean => {
      const m = metaOf(o);
      if (t.namespaced && p.namespace !== '' && own(m, 'namespace') !== p.namespace) return false;
      if (p.name !== null && own(m, 'name') !== p.name) return false;
      return selects(p.selection, o);
    };

    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private' });
    res.flushHeaders(); // clients wait for the headers before reading events; a quiet watch must not hang them
    this.#open.add(res);
    let lastRv = Math.max(this.#store.publishedRv, fromRv ?? 0);
    let first = true;
    const render = p.render ?? ((o: Obj) => o);
    const write = (type: EventType | 'BOOKMARK' | 'ERROR', object: unknown): void => {
      // A watch ended by its timeout or closeAll() may still be subscribed until 'close': never write after end.
      if (res.destroyed || res.writableEnded) return;
      const shown = type === 'BOOKMARK' || type === 'ERROR' ? object : render(object as Obj, first);
      if (type !== 'BOOKMARK' && type !== 'ERROR') first = false;
      res.write(`${JSON.stringify({ type, object: shown })}\n`);
      if (res.writableLength > this.#limits.maxBufferedBytes) {
        this.#log.info({ resource: skey, bufferedBytes: res.writableLength }, 'watch consumer too slow: disconnected');
        res.destroy();
      }
    };
    // Events at or below the starting version are already known to the client (from its list, or from the
    // initial ADDED events, which include changes still on their way to the log).
    const startRv = fromRv ?? this.#store.resourceVersion;
    const onEvent = (e: StoredEvent): void => {
      if (e.rv <= startRv) return;
      lastRv = e.rv;
      const now = e.type !== 'DELETED' && matches(e.object);
      const before = e.prev !== null && matches(e.prev);
      const type: EventType | null =
        e.type === 'DELETED'
          ? before
            ? 'DELETED'
            : null
          : now && before
            ? 'MODIFIED'
            : now
              ? 'ADDED'
              : before
                ? 'DELETED'
                : null;
      if (type !== null) write(type, present(t, e.object));
    };
    const bookmark = (extra?: Obj): void => {
      const metadata = { resourceVersion: String(lastRv), ...(extra === undefined ? {} : { annotations: extra }) };
      write('BOOKMARK', { kind: t.kind, apiVersion: apiVersionOf(t), metadata });
    };

    // History and subscription in one synchronous step: no event can fall between them.
    let backlog: StoredEvent[] = [];
    if (fromRv === null || initialEvents) {
      const current = this.#store.list(skey, t.namespaced && p.namespace !== '' ? p.namespace : undefined);
      for (const o of current) if (matches(o)) write('ADDED', present(t, o));
      if (initialEvents) bookmark({ 'k8s.io/initial-events-end': 'true' });
    } else {
      const since = this.#store.eventsSince(skey, fromRv);
      if (since === 'expired') {
        write('ERROR', expired(`too old resource version: ${fromRv} (${this.#store.oldestWatchableRv})`).status);
        this.#open.delete(res);
        res.end();
        return;
      }
      backlog = since;
    }
    const unsubscribe = this.#store.subscribe(skey, onEvent);
    for (const e of backlog) onEvent(e);

    const end = (): void => {
      unsubscribe();
      res.end();
    };
    this.#enders.set(res, end);
    const timers: NodeJS.Timeout[] = [setTimeout(end, timeoutMs)];
    if (bookmarks) timers.push(setInterval(() => bookmark(), this.#limits.bookmarkIntervalMs));
    for (const timer of timers) timer.unref();
    res.on('close', () => {
      unsubscribe();
      for (const timer of timers) clearTimeout(timer);
      this.#open.delete(res);
      this.#enders.delete(res);
    });
  }

  /** Ends every watch (server shutdown); clients reconnect and resume from their resourceVersion. */
  closeAll(): void {
    for (const res of this.#open) (this.#enders.get(res) ?? (() => res.end()))();
    this.#open.clear();
  }
}

function parseRv(text: string): number {
  if (!/^[0-9]{1,15}$/.test(text)) throw badRequest(`invalid resource version: ${JSON.stringify(text.slice(0, 32))}`);
  return Number(text);
}
