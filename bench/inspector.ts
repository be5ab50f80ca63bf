// Reads a benchmarked process's heap from outside, over the V8 inspector protocol (Chrome DevTools
// Protocol on a WebSocket): the process is started with `--inspect=127.0.0.1:0`, which prints its
// `ws://` address on stderr; `process.memoryUsage()` is evaluated in it, a full garbage collection can be
// requested, and heap snapshots are streamed to a file (docs/performance.md, "Soak" and "Policy scale").
// Nothing is injected into the process's code; only the bench connects.

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';

const LISTENING = /Debugger listening on (ws:\/\/\S+)/;

/** The inspector address a `--inspect` process printed, or null while it has not yet. */
export function inspectorUrl(stderr: readonly string[]): string | null {
  return LISTENING.exec(stderr.join(''))?.[1] ?? null;
}

/** Polls `stderr` (a growing array, e.g. FerryProcess.text) until the inspector address appears. */
export async function waitForInspectorUrl(stderr: readonly string[], timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const url = inspectorUrl(stderr);
    if (url !== null) return url;
    if (Date.now() > deadline) throw new Error(`no "Debugger listening" line within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface MemoryUsage {
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

interface Pending {
  readonly resolve: (result: Record<string, unknown>) => void;
  readonly reject: (error: Error) => void;
}

export class InspectorClient implements AsyncDisposable {
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Map<string, (params: Record<string, unknown>) => void>();
  #ids = 0;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.addEventListener('message', (ev: MessageEvent) => this.#onMessage(String(ev.data)));
    ws.addEventListener('close', () => {
      for (const p of this.#pending.values()) p.reject(new Error('inspector connection closed'));
      this.#pending.clear();
    });
  }

  static async connect(url: string): Promise<InspectorClient> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error(`cannot connect to the inspector at ${url}`)), {
        once: true,
      });
    });
    return new InspectorClient(ws);
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = ++this.#ids;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Evaluates `expression` in the process (JSON-serializable result). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send('Runtime.evaluate', { expression, returnByValue: true });
    const details = r.exceptionDetails as { text?: string } | undefined;
    if (details !== undefined) throw new Error(`evaluate ${expression}: ${details.text ?? 'exception'}`);
    return (r.result as { value: T }).value;
  }

  memoryUsage(): Promise<MemoryUsage> {
    return this.evaluate<MemoryUsage>('process.memoryUsage()');
  }

  /** A full, memory-reducing collection (what DevTools' "collect garbage" does). */
  async collectGarbage(): Promise<void> {
    await this.send('HeapProfiler.collectGarbage');
  }

  /** Writes a heap snapshot (V8's .heapsnapshot JSON; taking it collects garbage first) to `path`. */
  async takeHeapSnapshot(path: string): Promise<void> {
    const out = createWriteStream(path);
    let failed: Error | null = null;
    out.on('error', (err) => {
      failed = err;
    });
    this.#listeners.set('HeapProfiler.addHeapSnapshotChunk', (params) => {
      out.write(String(params.chunk));
    });
    try {
      await this.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    } finally {
      this.#listeners.delete('HeapProfiler.addHeapSnapshotChunk');
      out.end();
      await once(out, 'close');
    }
    if (failed !== null) throw failed;
  }

  close(): void {
    this.#ws.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  #onMessage(text: string): void {
    const msg = JSON.parse(text) as {
      id?: number;
      method?: string;
      params?: Record<string, unknown>;
      result?: Record<string, unknown>;
      error?: { message: string };
    };
    if (msg.id !== undefined) {
      const p = this.#pending.get(msg.id);
      if (p === undefined) return;
      this.#pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(msg.error.message));
      else p.resolve(msg.result ?? {});
    } else if (msg.method !== undefined) {
      this.#listeners.get(msg.method)?.(msg.params ?? {});
    }
  }
}
