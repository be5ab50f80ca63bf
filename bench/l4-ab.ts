// `npm run bench -- l4-ab`: two ztunnel pairs side by side in one process tree, each started from its own
// source tree (BENCH_TREE_A, BENCH_TREE_B; default: this one) and/or with its own NODE_OPTIONS
// (BENCH_NODE_OPTIONS_A/_B), so a code or flag change is measured before/after under the same machine load.
// Per variant, alternated ABBA: fixed-rate 1 KiB request/response over N connections through SOCKS5 →
// HBONE mTLS → echo (CPU of both ztunnels per 1000 requests, p50/p99), and a single-stream bulk transfer into
// a sink (Gbit/s and both ztunnels' CPU seconds per GiB). Loopback pods, no BPF, no root. The last line is one
// JSON object (docs/performance.md, "L4 CPU and bulk").
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runLoadgen, startBackend } from './children.ts';
import { cpuSeconds } from './proc.ts';
import { positiveEnv, r3 } from './report.ts';
import type { ZtunnelPair, ZtunnelPairOptions } from './ztunnel-pair.ts';

type Variant = 'a' | 'b';
const VARIANTS: readonly Variant[] = ['a', 'b'];

interface Tally {
  cpuLatency: number;
  completed: number;
  p50: number[];
  p99: number[];
  cpuBulk: number;
  bulkBytes: number;
  gbps: number[];
}

const mean = (v: readonly number[]): number => v.reduce((s, x) => s + x, 0) / v.length;

function meshYaml(net: number): string {
  const w = (name: string, ip: string, node: string): string => `
- uid: Kubernetes//Pod/bench/${name}
  name: ${name}
  namespace: bench
  serviceAccount: ${name}
  workloadIps: ["${ip}"]
  protocol: HBONE
  node: ${node}`;
  return `workloads:${w('client', `127.0.${net}.2`, 'ab-a')}${w('server', `127.0.${net}.3`, 'ab-b')}\n`;
}

async function startPair(stack: AsyncDisposableStack, v: Variant, net: number): Promise<ZtunnelPair> {
  const tree = resolve(process.env[`BENCH_TREE_${v.toUpperCase()}`] ?? join(import.meta.dirname, '..'));
  const mod = (await import(pathToFileURL(join(tree, 'bench/ztunnel-pair.ts')).href)) as {
    startZtunnelPair(stack: AsyncDisposableStack, o: ZtunnelPairOptions): Promise<ZtunnelPair>;
  };
  const heap = (await import(pathToFileURL(join(tree, 'src/ztunnel/heap-limits.ts')).href)) as {
    ztunnelNodeOptions(operator: string | undefined): string;
  };
  const dir = await mkdtemp(join(tmpdir(), `ferry-bench-ab-${v}-`));
  stack.defer(() => rm(dir, { recursive: true, force: true }));
  process.stdout.write(`variant ${v}: ${tree} ${process.env[`BENCH_NODE_OPTIONS_${v.toUpperCase()}`] ?? ''}\n`);
  return mod.startZtunnelPair(stack, {
    dir,
    meshYaml: meshYaml(net),
    nodes: ['ab-a', 'ab-b'],
    nodeOptions: [heap.ztunnelNodeOptions(process.env[`BENCH_NODE_OPTIONS_${v.toUpperCase()}`])],
  });
}

export async function runL4Ab(): Promise<number> {
  const durationMs = positiveEnv(process.env, 'BENCH_DURATION_MS', 5000);
  const rate = positiveEnv(process.env, 'BENCH_RATE', 1000);
  const conns = positiveEnv(process.env, 'BENCH_CONNECTIONS', 16);
  const rounds = positiveEnv(process.env, 'BENCH_ROUNDS', 2);
  const bulkBytes = positiveEnv(process.env, 'BENCH_BULK_BYTES', 512 * 1024 ** 2);
  const loadStart = loadavg().map(r3);
  await using stack = new AsyncDisposableStack();
  const nets: Record<Variant, number> = { a: 95, b: 96 };
  const pairs = {} as Record<Variant, ZtunnelPair>;
  const backends = {} as Record<Variant, { echo: number; sink: number }>;
  for (const v of VARIANTS) {
    const server = `127.0.${nets[v]}.3`;
    const echo = stack.use(await startBackend('echo', server, null));
    const sink = stack.use(await startBackend('sink', server, null));
    backends[v] = { echo: echo.port, sink: sink.port };
    pairs[v] = await startPair(stack, v, nets[v]);
  }
  const pids = (v: Variant): number[] => [pairs[v].a.child.pid ?? 0, pairs[v].b.child.pid ?? 0];
  const cpu = (v: Variant): number => pids(v).reduce((s, p) => s + cpuSeconds(p), 0);
  const latencyArgs = (v: Variant, ms: number): string[] => [
    ...['--target', `127.0.${nets[v]}.3:${backends[v].echo}`, '--source', `127.0.${nets[v]}.2`],
    ...['--socks5', pairs[v].socks5, '--connections', String(conns), '--rate', String(rate)],
    ...['--size', '1024', '--duration-ms', String(ms)],
  ];
  const bulkArgs = (v: Variant): string[] => [
    ...['--target', `127.0.${nets[v]}.3:${backends[v].sink}`, '--source', `127.0.${nets[v]}.2`],
    ...['--socks5', pairs[v].socks5, '--throughput-bytes', String(bulkBytes)],
  ];
  for (const v of VARIANTS) {
    await runLoadgen(latencyArgs(v, 1000), null); // warm-up: pooled connection, JIT
    await runLoadgen(bulkArgs(v), null);
  }
  const tally = Object.fromEntries(
    VARIANTS.map((v) => [v, { cpuLatency: 0, completed: 0, p50: [], p99: [], cpuBulk: 0, bulkBytes: 0, gbps: [] }]),
  ) as unknown as Record<Variant, Tally>;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
    for (const v of order) {
      const t = tally[v];
      let before = cpu(v);
      const r = await runLoadgen(latencyArgs(v, durationMs), null);
      t.cpuLatency += cpu(v) - before;
      t.completed += r.completed ?? 0;
      t.p50.push(r.p50_ms ?? Number.NaN);
      t.p99.push(r.p99_ms ?? Number.NaN);
      before = cpu(v);
      const b = await runLoadgen(bulkArgs(v), null);
      t.cpuBulk += cpu(v) - before;
      t.bulkBytes += bulkBytes;
      t.gbps.push(b.gbps ?? Number.NaN);
      process.stdout.write(
        `  round ${round} ${v}: p50 ${r.p50_ms?.toFixed(3)} p99 ${r.p99_ms?.toFixed(3)} ms, ` +
          `${(((cpu(v) - before) * 1024 ** 3) / bulkBytes).toFixed(2)} CPU-s/GiB, bulk ${b.gbps?.toFixed(2)} Gbit/s\n`,
      );
    }
  }
  const summary = Object.fromEntries(
    VARIANTS.map((v) => {
      const t = tally[v];
      return [
        v,
        {
          cpu_per_1000rps_pair: r3((t.cpuLatency / t.completed) * 1000),
          p50_ms: r3(mean(t.p50)),
          p99_ms: r3(mean(t.p99)),
          bulk_gbps: r3(mean(t.gbps)),
          bulk_cpu_s_per_gib: r3(t.cpuBulk / (t.bulkBytes / 1024 ** 3)),
        },
      ];
    }),
  );
  process.stdout.write(
    `${JSON.stringify({ bench: 'l4-ab', ...summary, rounds, duration_ms: durationMs, rate, connections: conns, bulk_bytes: bulkBytes, loadavg_start: loadStart, loadavg_end: loadavg().map(r3) })}\n`,
  );
  return 0;
}
