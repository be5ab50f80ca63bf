// The test curl's load mode: N requests from C workers (each sequential, sharing keep-alive connections or
// one h2c session), optionally pausing between requests and numbering x-request-id, summarised as one JSON
// object — so a 500-request canary check in a test is one `ferry exec`, not 500. The summary (pure):
// statuses, the pods that answered (`x-pod` response header of the echo app), failures by error code and
// latency percentiles.
import { setTimeout as delay } from 'node:timers/promises';
import type { ResponseHeaders, SendRequest, SendResult, Transport } from './curl-transport.ts';

export interface LoadPlan {
  readonly request: SendRequest;
  readonly count: number;
  readonly concurrency: number;
  /** Pause of each worker between its requests. */
  readonly intervalMs: number;
  /** When set, request i carries `x-request-id: <prefix>-<i>`. */
  readonly requestIdPrefix: string | null;
}

export interface LoadSample {
  readonly result: SendResult;
  readonly latencyMs: number;
}

export interface LoadSummary {
  readonly total: number;
  readonly byStatus: Readonly<Record<string, number>>;
  readonly byPod: Readonly<Record<string, number>>;
  /** Requests that got no HTTP response at all (connection refused, reset, timeout). */
  readonly failures: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
}

function podOf(headers: ResponseHeaders): string | undefined {
  const v = headers['x-pod'];
  return typeof v === 'string' ? v : v?.[0];
}

/** Nearest-rank percentile of sorted values; 0 for none. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1] ?? 0;
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

export function summarize(samples: readonly LoadSample[]): LoadSummary {
  const byStatus: Record<string, number> = {};
  const byPod: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let failures = 0;
  const latencies: number[] = [];
  for (const s of samples) {
    if (s.result.kind === 'error') {
      failures += 1;
      errors[s.result.code] = (errors[s.result.code] ?? 0) + 1;
      continue;
    }
    latencies.push(s.latencyMs);
    const status = String(s.result.status);
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    const pod = podOf(s.result.headers);
    if (pod !== undefined) byPod[pod] = (byPod[pod] ?? 0) + 1;
  }
  latencies.sort((a, b) => a - b);
  return {
    total: samples.length,
    byStatus,
    byPod,
    failures,
    errors,
    latencyMs: {
      p50: round3(percentile(latencies, 0.5)),
      p90: round3(percentile(latencies, 0.9)),
      p99: round3(percentile(latencies, 0.99)),
      max: round3(latencies.at(-1) ?? 0),
    },
  };
}

/** Request number i: with `x-request-id: <prefix>-<i>` when a prefix is given. */
export function withRequestId(req: SendRequest, prefix: string | null, i: number): SendRequest {
  if (prefix === null) return req;
  return { ...req, headers: { ...req.headers, 'x-request-id': `${prefix}-${i}` } };
}

export async function runLoad(plan: LoadPlan, transport: Transport): Promise<LoadSummary> {
  const samples: LoadSample[] = [];
  let next = 0;
  const worker = async () => {
    for (let first = true; next < plan.count; first = false) {
      if (!first && plan.intervalMs > 0) await delay(plan.intervalMs);
      if (next >= plan.count) break;
      const i = next++;
      const started = performance.now();
      const result = await transport.send(withRequestId(plan.request, plan.requestIdPrefix, i));
      samples.push({ result, latencyMs: performance.now() - started });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(plan.concurrency, plan.count) }, worker));
  } finally {
    transport.close();
  }
  return summarize(samples);
}
