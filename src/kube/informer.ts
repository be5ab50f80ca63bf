// One informer per watched kind, on @kubernetes/client-node's ListWatch (list, then watch from the list's
// resourceVersion; a watch that ends is resumed from the last resourceVersion seen; `410 Gone` clears it,
// so the next round relists and reports the differences as adds/updates/deletes). What ListWatch does not
// do, added here: it asks for bookmarks (allowWatchBookmarks, so a quiet kind's resourceVersion stays fresh
// and a resumed watch is not 410), it caps its own delay between clean watch ends at 500 ms (ListWatch grows
// it to 30 s when no event arrived in between, which would leave a quiet kind unwatched that long), and it
// restarts after an error (ListWatch stops for good on a failed list or watch) with jittered exponential
// backoff, which a successful list or any event resets. Emits raw JSON objects; parsing is the caller's.
import { setTimeout as sleep } from 'node:timers/promises';
import { type KubeConfig, type KubernetesObject, ListWatch, Watch } from '@kubernetes/client-node';
import type { Logger } from '../runtime/logger.ts';
import { type ReconnectBackoff, reconnectDelayMs } from '../xds/backoff.ts';
import { isJson, type Json, type KubeClient } from './client.ts';

export const INFORMER_BACKOFF: ReconnectBackoff = { initialMs: 200, maxMs: 10_000 };
/** Longest pause between a watch that ended cleanly and the next (ListWatch's own grows to 30 s). */
const MAX_CLEAN_RECONNECT_MS = 500;

export interface InformerHandlers {
  upsert(obj: Json): void;
  remove(obj: Json): void;
}

export interface InformerOptions {
  readonly config: KubeConfig;
  readonly client: KubeClient;
  /** Collection path across namespaces (kube-resources.ts collectionPath). */
  readonly path: string;
  readonly handlers: InformerHandlers;
  readonly log: Logger;
  readonly backoff?: ReconnectBackoff;
  readonly random?: () => number;
}

/** A Watch that asks the server for BOOKMARK events and ends each watch after a random 5–10 minutes. */
class BookmarkWatch extends Watch {
  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const timeoutSeconds = 300 + Math.floor(Math.random() * 300); // spread the reconnects of many replicas
    return super.watch(path, { ...queryParams, allowWatchBookmarks: true, timeoutSeconds }, callback, done);
  }
}

export class KubeInformer {
  readonly #opts: InformerOptions;
  readonly #lw: ListWatch<KubernetesObject>;
  #stopped = false;
  #attempt = 0;
  #restartTimer: NodeJS.Timeout | null = null;
  #lists = 0;
  #errors = 0;
  #synced: PromiseWithResolvers<void> = Promise.withResolvers();

  constructor(opts: InformerOptions) {
    this.#opts = opts;
    const list = async () => {
      const l = await opts.client.list(opts.path);
      this.#lists++;
      this.#attempt = 0;
      return { metadata: { resourceVersion: l.resourceVersion }, items: l.items.filter(hasMeta) };
    };
    this.#lw = new ListWatch(opts.path, new BookmarkWatch(opts.config), list, false, undefined, undefined, {
      delayFn: (ms) => sleep(Math.min(ms, MAX_CLEAN_RECONNECT_MS)),
    });
    const seen = (fn: (o: Json) => void) => (o: KubernetesObject) => {
      this.#attempt = 0;
      if (!this.#stopped) fn(o as Json);
    };
    this.#lw.on('add', seen(opts.handlers.upsert));
    this.#lw.on('update', seen(opts.handlers.upsert));
    this.#lw.on('delete', seen(opts.handlers.remove));
    this.#lw.on('error', (err) => this.#onError(err));
  }

  /** How many full lists were made (1 at start; one more per 410 Gone or failed resume). */
  get lists(): number {
    return this.#lists;
  }

  get errors(): number {
    return this.#errors;
  }

  /** Starts listing and watching; resolves once the first list is in (retrying with backoff until then). */
  async start(signal?: AbortSignal): Promise<void> {
    void this.#run();
    const aborted =
      signal === undefined
        ? null
        : new Promise<never>((_, reject) => {
            signal.addEventListener('abort', () => reject(signal.reason), { once: true });
          });
    await (aborted === null ? this.#synced.promise : Promise.race([this.#synced.promise, aborted]));
  }

  stop(): void {
    this.#stopped = true;
    if (this.#restartTimer !== null) clearTimeout(this.#restartTimer);
    this.#restartTimer = null;
    void this.#lw.stop();
  }

  async #run(): Promise<void> {
    if (this.#stopped) return;
    try {
      await this.#lw.start();
    } catch (err) {
      this.#onError(err);
      return;
    }
    if (this.#lists > 0) this.#synced.resolve();
  }

  #onError(err: unknown): void {
    if (this.#stopped) return; // stop() aborts the watch: that abort is not a failure
    this.#errors++;
    const delay = reconnectDelayMs(
      this.#attempt++,
      this.#opts.backoff ?? INFORMER_BACKOFF,
      (this.#opts.random ?? Math.random)(),
    );
    this.#opts.log.warn(
      { path: this.#opts.path, error: String((err as Error)?.message ?? err), retryInMs: delay },
      'list/watch failed; retrying',
    );
    if (this.#restartTimer !== null) return;
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      void this.#run();
    }, delay);
    this.#restartTimer.unref();
  }
}

// ListWatch indexes by metadata.namespace/name and throws on an item without metadata: hostile lists are filtered.
function hasMeta(o: Json): o is Json & KubernetesObject {
  return isJson(o.metadata) && typeof o.metadata.name === 'string';
}
