// `npm run bench -- l4`: the ztunnel L4 benchmark, side by side in one run and one process tree.
// baseline: loadgen → echo server (loopback, direct); mesh: loadgen → SOCKS5 of ztunnel A → HBONE mTLS →
// ztunnel B → echo server. Fixed-rate 1 KiB request/response (Istio's fortio shape) over each connection
// count, baseline and mesh rounds alternated (ABBA) to cancel drift; per-ztunnel CPU from /proc/<pid>/stat
// around the mesh rounds, RSS idle and under load (max of 100 ms samples), and single-stream throughput
// into a sink, direct and through the mesh. The last line printed is one JSON object (docs/performance.md).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CpuList, pinProcess, runLoadgen, startBackend } from './children.ts';
import { cpuSeconds, RssSampler, rssMb } from './proc.ts';
import { connectionCounts, positiveEnv, proxyCostSummary, r3 } from './report.ts';
import { startZtunnelPair } from './ztunnel-pair.ts';

// Loopback "pods" on an uncommon /24 so concurrent tests (127.0.0.x) cannot collide with our :15008s.
const CLIENT_IP = '127.0.93.2';
const SERVER_IP = '127.0.93.3';

export interface L4Options {
  readonly durationMs: number;
  readonly rate: number;
  readonly size: number;
  readonly connections: readonly number[];
  readonly rounds: number;
  readonly warmupMs: number;
  readonly throughputBytes: number;
  /** none: the scheduler places everything; split: load generator + backends on CPU 0, CA + ztunnels on 1. */
  readonly pin: 'none' | 'split';
  /** Extra NODE_OPTIONS for the ztunnel processes (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof). */
  readonly ztunnelNodeOptions: string;
}

export function l4OptionsFromEnv(env: NodeJS.ProcessEnv): L4Options {
  const connections = connectionCounts(env);
  const pin = env.BENCH_PIN ?? 'none';
  if (pin !== 'none' && pin !== 'split') throw new Error(`BENCH_PIN must be none or split, got ${pin}`);
  return {
    durationMs: positiveEnv(env, 'BENCH_DURATION_MS', 15_000),
    rate: positiveEnv(env, 'BENCH_RATE', 1000),
    size: positiveEnv(env, 'BENCH_SIZE', 1024),
    connections,
    rounds: positiveEnv(env, 'BENCH_ROUNDS', 1),
    warmupMs: positiveEnv(env, 'BENCH_WARMUP_MS', 3000),
    throughputBytes: positiveEnv(env, 'BENCH_THROUGHPUT_BYTES', 1024 ** 3),
    pin,
    ztunnelNodeOptions: env.BENCH_ZTUNNEL_NODE_OPTIONS ?? '',
  };
}

function meshYaml(): string {
  return `workloads:
- uid: Kubernetes//Pod/bench/client
  name: client
  namespace: bench
  serviceAccount: client
  workloadIps: ["${CLIENT_IP}"]
  protocol: HBONE
  node: bench-a
- uid: Kubernetes//Pod/bench/server
  name: server
  namespace: bench
  serviceAccount: server
  workloadIps: ["${SERVER_IP}"]
  protocol: HBONE
  node: bench-b
`;
}

interface Percentiles {
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
}

interface SideResult extends Percentiles {
  readonly requests: number;
  readonly completed: number;
  readonly errors: number;
  readonly max_ms: number;
}

const PCTS = ['p50_ms', 'p90_ms', 'p99_ms'] as const;

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Rounds of one side merged: counts summed, percentiles averaged over rounds. */
function merge(rounds: readonly Record<string, number>[]): SideResult {
  const pick = (k: string): number[] => rounds.map((r) => r[k] ?? Number.NaN);
  const sum = (k: string): number => pick(k).reduce((a, b) => a + b, 0);
  return {
    requests: sum('requests'),
    completed: sum('completed'),
    errors: sum('errors'),
    p50_ms: mean(pick('p50_ms')),
    p90_ms: mean(pick('p90_ms')),
    p99_ms: mean(pick('p99_ms')),
    max_ms: Math.max(...pick('max_ms')),
  };
}

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

export async function runL4(o: L4Options = l4OptionsFromEnv(process.env)): Promise<number> {
  await using stack = new AsyncDisposableStack();
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-l4-'));
  stack.defer(() => rm(dir, { recursive: true, force: true }));
  const cpus: { load: CpuList; mesh: CpuList } =
    o.pin === 'split' ? { load: '0', mesh: '1' } : { load: null, mesh: null };

  const echo = stack.use(await startBackend('echo', SERVER_IP, cpus.load));
  const sink = stack.use(await startBackend('sink', SERVER_IP, cpus.load));

  const {
    ca,
    a: zA,
    b: zB,
    socks5: socks,
  } = await startZtunnelPair(stack, {
    dir,
    meshYaml: meshYaml(),
    nodes: ['bench-a', 'bench-b'],
    nodeOptions: [process.env.NODE_OPTIONS, o.ztunnelNodeOptions],
  });
  const pids = { a: zA.child.pid ?? 0, b: zB.child.pid ?? 0 };
  for (const pid of [ca.child.pid ?? 0, pids.a, pids.b]) pinProcess(pid, cpus.mesh);

  // Idle: after startup (certificates fetched, listeners up), before any traffic; let startup garbage settle.
  await new Promise((r) => setTimeout(r, 1000));
  const idleRss = { a: rssMb(pids.a), b: rssMb(pids.b) };
  say(`ztunnels ready (pids ${pids.a}, ${pids.b}); idle RSS ${idleRss.a.toFixed(1)} / ${idleRss.b.toFixed(1)} MiB`);

  const sideArgs = (side: 'baseline' | 'mesh', conns: number, durationMs: number): string[] => [
    ...['--target', `${SERVER_IP}:${echo.port}`, '--source', CLIENT_IP],
    ...(side === 'mesh' ? ['--socks5', socks] : []),
    ...['--connections', String(conns), '--rate', String(o.rate), '--size', String(o.size)],
    ...['--duration-ms', String(durationMs)],
  ];
  // Warm-up (not measured): opens the pooled HBONE connection and lets V8 optimise the hot paths.
  const maxConns = Math.max(...o.connections);
  await runLoadgen(sideArgs('baseline', maxConns, o.warmupMs), cpus.load);
  await runLoadgen(sideArgs('mesh', maxConns, o.warmupMs), cpus.load);

  const rss = new RssSampler([pids.a, pids.b]);
  const cpu = { a: 0, b: 0, completed: 0 };
  const results = new Map<number, { baseline: Record<string, number>[]; mesh: Record<string, number>[] }>();
  let phase = 0;
  for (const conns of o.connections) {
    const perConn = { baseline: [] as Record<string, number>[], mesh: [] as Record<string, number>[] };
    results.set(conns, perConn);
    for (let round = 0; round < o.rounds; round++) {
      // ABBA: baseline first on even phases, mesh first on odd ones.
      const order = phase++ % 2 === 0 ? (['baseline', 'mesh'] as const) : (['mesh', 'baseline'] as const);
      for (const side of order) {
        const before = { a: cpuSeconds(pids.a), b: cpuSeconds(pids.b) };
        if (side === 'mesh') rss.start();
        const r = await runLoadgen(sideArgs(side, conns, o.durationMs), cpus.load);
        if (side === 'mesh') {
          rss.stop();
          cpu.a += cpuSeconds(pids.a) - before.a;
          cpu.b += cpuSeconds(pids.b) - before.b;
          cpu.completed += r.completed ?? 0;
        }
        perConn[side].push(r);
        say(
          `  ${String(conns).padStart(3)} conns ${side.padEnd(8)} p50 ${r.p50_ms?.toFixed(3)} p90 ${r.p90_ms?.toFixed(3)} ` +
            `p99 ${r.p99_ms?.toFixed(3)} ms  (${r.completed}/${r.requests}, ${r.errors} errors)`,
        );
      }
    }
  }

  // Single stream into the sink: direct, then through the mesh.
  const tputArgs = (side: 'baseline' | 'mesh'): string[] => [
    ...['--target', `${SERVER_IP}:${sink.port}`, '--source', CLIENT_IP],
    ...(side === 'mesh' ? ['--socks5', socks] : []),
    ...['--throughput-bytes', String(o.throughputBytes)],
  ];
  const tputDirect = await runLoadgen(tputArgs('baseline'), cpus.load);
  const tputMesh = await runLoadgen(tputArgs('mesh'), cpus.load);
  say(`  throughput direct ${tputDirect.gbps?.toFixed(2)} Gbit/s, mesh ${tputMesh.gbps?.toFixed(2)} Gbit/s`);

  const perConnections = [...results].map(([conns, r]) => {
    const baseline = merge(r.baseline);
    const mesh = merge(r.mesh);
    const added = Object.fromEntries(PCTS.map((p) => [`added_${p}`, r3(mesh[p] - baseline[p])]));
    return { connections: conns, baseline, mesh, ...added } as {
      connections: number;
      baseline: SideResult;
      mesh: SideResult;
    } & Record<`added_${(typeof PCTS)[number]}`, number>;
  });
  const worst = (k: 'added_p50_ms' | 'added_p90_ms' | 'added_p99_ms'): number =>
    Math.max(...perConnections.map((c) => c[k]));
  const summary = {
    bench: 'l4',
    // Top-level added latencies are the worst over the connection counts.
    added_p50_ms: worst('added_p50_ms'),
    added_p90_ms: worst('added_p90_ms'),
    added_p99_ms: worst('added_p99_ms'),
    ...proxyCostSummary({ cpu, idleRss, rss, pids }),
    throughput_gbps: r3(tputMesh.gbps ?? Number.NaN),
    baseline_throughput_gbps: r3(tputDirect.gbps ?? Number.NaN),
    rate: o.rate,
    size: o.size,
    duration_ms: o.durationMs,
    rounds: o.rounds,
    pin: o.pin,
    per_connections: perConnections,
  };
  say(JSON.stringify(summary));
  return 0;
}
