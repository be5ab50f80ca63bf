// Load generator for the local API server, run in a worker thread so that its HTTP client does not share
// the event loop with the server under test: PATCHes (merge patch of a label) paced to `rate` per second
// over `seconds`, round robin over pods load-0..load-(pods-1) in `namespace`, at most 128 in flight.
import { parentPort, workerData } from 'node:worker_threads';
import { Pool } from 'undici';

export interface LoadParams {
  readonly url: string;
  readonly caPem: string;
  readonly token: string;
  readonly namespace: string;
  readonly pods: number;
  readonly rate: number;
  readonly seconds: number;
}

export interface LoadResult {
  readonly ok: number;
  readonly failed: number;
  readonly elapsedMs: number;
  readonly statuses: Record<string, number>;
}

async function run(p: LoadParams): Promise<LoadResult> {
  // undici's request API on one pool: far less CPU per request than fetch, so the generator keeps pace.
  const pool = new Pool(p.url, { connect: { ca: p.caPem }, connections: 128 });
  const headers = { authorization: `Bearer ${p.token}`, 'content-type': 'application/merge-patch+json' };
  const started = Date.now();
  const inFlight = new Set<Promise<void>>();
  const statuses: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  const total = p.rate * p.seconds;
  let sent = 0;
  // Paced in 5 ms ticks (a timer per request would add its own latency), at most 128 in flight.
  while (sent < total) {
    const due = Math.min(total, Math.floor(((Date.now() - started) * p.rate) / 1000) + 1);
    while (sent < due && inFlight.size < 128) {
      const path = `/api/v1/namespaces/${p.namespace}/pods/load-${sent % p.pods}`;
      const body = JSON.stringify({ metadata: { labels: { n: String(sent) } } });
      sent++;
      const req: Promise<void> = pool
        .request({ path, method: 'PATCH', headers, body })
        .then(async (res) => {
          await res.body.dump();
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
          if (res.statusCode === 200) ok++;
          else failed++;
        })
        .catch(() => {
          failed++;
        })
        .finally(() => inFlight.delete(req));
      inFlight.add(req);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(inFlight);
  const elapsedMs = Date.now() - started;
  await pool.close();
  return { ok, failed, elapsedMs, statuses };
}

if (parentPort !== null && workerData !== null && workerData !== undefined) {
  const port = parentPort;
  run(workerData as LoadParams).then(
    (r) => port.postMessage(r),
    (err: unknown) => port.postMessage({ ok: 0, failed: -1, elapsedMs: 0, statuses: { error: String(err) } }),
  );
}
