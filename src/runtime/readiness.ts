// Readiness as a set of named blocking tasks (istio/ztunnel:src/readiness.rs): the process is ready only
// when nothing blocks it. Each task calls block(name) at startup and unblocks when its precondition holds
// (first ACKed xDS push, certificates, listeners). Unblocking is idempotent; a task may block again later
// (e.g. drain). Also the readiness server on 15021: GET /healthz/ready → 200 "ready" or 503 with the
// pending task names.
import { HttpServer, type ListenAddress } from './http-server.ts';
import type { Logger } from './logger.ts';

export interface ReadinessBlock extends Disposable {
  readonly name: string;
  /** Removes this block. Idempotent. */
  unblock(): void;
}

export class ReadinessTracker {
  // Tokens, not names: two tasks may block under the same name, each unblocks only itself.
  readonly #blocks = new Set<ReadinessBlock>();
  #waiters: Array<() => void> = [];

  /** Blocks readiness until the returned handle is unblocked or disposed. */
  block(name: string): ReadinessBlock {
    const blocks = this.#blocks;
    const onUnblocked = (): void => this.#notify();
    let done = false;
    const block: ReadinessBlock = {
      name,
      unblock() {
        if (done) return;
        done = true;
        blocks.delete(block);
        onUnblocked();
      },
      [Symbol.dispose]() {
        block.unblock();
      },
    };
    blocks.add(block);
    return block;
  }

  get ready(): boolean {
    return this.#blocks.size === 0;
  }

  /** Names still blocking, sorted, each once. */
  pending(): string[] {
    return [...new Set([...this.#blocks].map((b) => b.name))].sort();
  }

  /** Resolves when the set is empty (at once if it is now). */
  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #notify(): void {
    if (!this.ready) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}

export interface ReadinessServerOptions {
  /** Istio: 0.0.0.0:15021. */
  readonly listen: ListenAddress;
  readonly tracker: ReadinessTracker;
  readonly logger?: Logger;
}

/**
 * The 15021 server: `/healthz/ready`, and `/healthz/live` (200 whenever the process answers HTTP, ready or
 * not: a Kubernetes liveness probe must not restart a ztunnel that waits for an absent controller, see
 * charts/ferry/README.md). Call start() to listen.
 */
export function createReadinessServer(opts: ReadinessServerOptions): HttpServer {
  const { tracker } = opts;
  return new HttpServer({
    name: 'readiness',
    listen: opts.listen,
    ...(opts.logger === undefined ? {} : { logger: opts.logger }),
    routes: [
      {
        path: '/healthz/ready',
        description: 'readiness: 200 when no startup task is pending',
        methods: {
          GET: () =>
            tracker.ready
              ? { status: 200, body: 'ready' }
              : { status: 503, body: `not ready, pending: ${tracker.pending().join(', ')}\n` },
        },
      },
      {
        path: '/healthz/live',
        description: 'liveness: 200 while the process serves HTTP, ready or not',
        methods: { GET: () => ({ status: 200, body: 'live' }) },
      },
    ],
  });
}
