// Gives memory back to the OS after a large configuration change (docs/performance.md, "Policy scale").
// Applying or deleting thousands of objects allocates hundreds of MiB of short-lived objects (YAML, the
// translated config, encoded xDS resources); V8 grows its young generation to the maximum for that and
// keeps the freed pages pooled. Its memory reducer would hand them back once the process is idle, but it
// judges "idle" from the allocation rate of the last collections, and an idle controller makes no
// collections, so the estimate from the burst stays and the RSS stays at its peak (measured: 128 MiB before,
// 340 MiB after applying and deleting 5,000 policies, with the live heap back at 25 MiB). Nothing is
// retained; the memory is reserved. So once changes have been quiet for a while and the heap holds much more
// than it uses, the controller asks V8 for one memory-reducing collection, the same one DevTools' "collect
// garbage" runs (inspector HeapProfiler.collectGarbage, in process; no debugger port is opened).
import { Session } from 'node:inspector';
import { getHeapStatistics } from 'node:v8';

export interface HeapReading {
  /** V8's committed heap (total_heap_size). */
  readonly totalBytes: number;
  /** Live and not yet collected objects (used_heap_size). */
  readonly usedBytes: number;
}

export interface MemoryReleaseOptions {
  /** How long changes must have been quiet before the heap is looked at. Default 5 s. */
  readonly quietMs?: number;
  /** Committed but unused heap above which memory is released. Default 64 MiB. */
  readonly thresholdBytes?: number;
  /** Injected for tests; default: V8's heap statistics. */
  readonly readHeap?: () => HeapReading;
  /** Injected for tests; default: one memory-reducing collection over an in-process inspector session. */
  readonly release?: () => Promise<void>;
  /** Told after every release, with the readings before and after. */
  readonly onReleased?: (before: HeapReading, after: HeapReading, ms: number) => void;
}

const DEFAULT_QUIET_MS = 5_000;
const DEFAULT_THRESHOLD_BYTES = 64 * 1024 * 1024;

/** Pure: whether the heap reserves enough beyond what it uses to be worth a memory-reducing collection. */
export function shouldReleaseHeap(reading: HeapReading, thresholdBytes: number): boolean {
  return reading.totalBytes - reading.usedBytes > thresholdBytes;
}

export function readV8Heap(): HeapReading {
  const s = getHeapStatistics();
  return { totalBytes: s.total_heap_size, usedBytes: s.used_heap_size };
}

/** One memory-reducing collection (V8 also shrinks the young generation and frees its pooled pages). */
export async function releaseHeapMemory(): Promise<void> {
  const session = new Session();
  session.connect();
  try {
    await new Promise<void>((resolve, reject) => {
      session.post('HeapProfiler.collectGarbage', (err) => (err === null ? resolve() : reject(err)));
    });
  } finally {
    session.disconnect();
  }
}

/** Debounced: `changed()` after every published change; the heap is checked once changes are quiet. */
export class MemoryReleaser implements Disposable {
  readonly #quietMs: number;
  readonly #thresholdBytes: number;
  readonly #readHeap: () => HeapReading;
  readonly #release: () => Promise<void>;
  readonly #onReleased: MemoryReleaseOptions['onReleased'];
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(opts: MemoryReleaseOptions = {}) {
    this.#quietMs = opts.quietMs ?? DEFAULT_QUIET_MS;
    this.#thresholdBytes = opts.thresholdBytes ?? DEFAULT_THRESHOLD_BYTES;
    this.#readHeap = opts.readHeap ?? readV8Heap;
    this.#release = opts.release ?? releaseHeapMemory;
    this.#onReleased = opts.onReleased;
  }

  changed(): void {
    if (this.#closed) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#check(), this.#quietMs);
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async #check(): Promise<void> {
    this.#timer = null;
    const before = this.#readHeap();
    if (this.#closed || !shouldReleaseHeap(before, this.#thresholdBytes)) return;
    const start = performance.now();
    try {
      await this.#release();
    } catch {
      return; // best effort: the memory stays reserved, nothing else is affected
    }
    this.#onReleased?.(before, this.#readHeap(), performance.now() - start);
  }
}
