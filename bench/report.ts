// Shared by the side-by-side benchmarks: environment knobs and the proxy-cost part of the summary line
// (CPU per 1000 requests and RSS of the two ztunnels), so every bench reports them the same way.
import type { RssSampler } from './proc.ts';

export const r3 = (n: number): number => Math.round(n * 1000) / 1000;

/** A positive number from the environment, or `fallback` when unset; throws naming the variable. */
export function positiveEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(text)}`);
  return n;
}

export function nonNegativeEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number ≥ 0, got ${JSON.stringify(text)}`);
  return n;
}

/** BENCH_CONNECTIONS: a comma-separated list of connection counts (default 4,16). */
export function connectionCounts(env: NodeJS.ProcessEnv): number[] {
  const connections = (env.BENCH_CONNECTIONS ?? '4,16').split(',').map((c) => Number(c.trim()));
  if (connections.some((c) => !Number.isInteger(c) || c <= 0)) {
    throw new Error(`BENCH_CONNECTIONS must be a list of positive integers, got ${env.BENCH_CONNECTIONS}`);
  }
  return connections;
}

export interface ProxyCostInput {
  /** CPU seconds of ztunnel A and B over the measured rounds, and the requests completed meanwhile. */
  readonly cpu: { readonly a: number; readonly b: number; readonly completed: number };
  readonly idleRss: { readonly a: number; readonly b: number };
  readonly rss: RssSampler;
  readonly pids: { readonly a: number; readonly b: number };
}

/** CPU seconds per 1000 completed requests (= vCPU at 1000 rps) and RSS, per ztunnel and worst-of-two. */
export function proxyCostSummary(i: ProxyCostInput) {
  const per1000 = { a: (i.cpu.a / i.cpu.completed) * 1000, b: (i.cpu.b / i.cpu.completed) * 1000 };
  return {
    cpu_per_1000rps: r3(Math.max(per1000.a, per1000.b)),
    cpu_per_1000rps_ztunnel_a: r3(per1000.a),
    cpu_per_1000rps_ztunnel_b: r3(per1000.b),
    rss_mb: r3(Math.max(i.idleRss.a, i.idleRss.b)),
    rss_idle_mb: { ztunnel_a: r3(i.idleRss.a), ztunnel_b: r3(i.idleRss.b) },
    rss_load_mb: r3(Math.max(i.rss.max(i.pids.a), i.rss.max(i.pids.b))),
    rss_load_mb_per_ztunnel: { ztunnel_a: r3(i.rss.max(i.pids.a)), ztunnel_b: r3(i.rss.max(i.pids.b)) },
  };
}
