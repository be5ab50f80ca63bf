// `npm run bench -- ztunnel-soak`: steady load through two ztunnels on loopback for a long time (default
// 60 s; BENCH_SOAK_DURATION_MS=3600000 for the hour), sampling each ztunnel's RSS (/proc) and V8 heap
// (process.memoryUsage() over the inspector) every few seconds, with a heap snapshot of each at the start
// and at the end (both taken with the load stopped) compared by constructor. Tells a leak (live heap and
// object counts grow with the traffic served) from heap reservation (RSS grows, the live heap does not,
// and a memory-reducing GC gives the RSS back). Load: persistent connections at a fixed request rate
// (bench/loadgen.ts) plus a fixed rate of new connections (bench/conn-churn.ts), i.e. both per-request and
// per-connection paths. The last line printed is one JSON object (docs/performance.md, "Soak").
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runJsonChild, runLoadgen, startBackend } from './children.ts';
import { compareHeapSummaries, formatDeltas, type HeapSummary, summarizeHeapSnapshot } from './heap-snapshot.ts';
import { InspectorClient, type MemoryUsage, waitForInspectorUrl } from './inspector.ts';
import { cpuSeconds, rssMb } from './proc.ts';
import { nonNegativeEnv, positiveEnv, r3 } from './report.ts';
import { startZtunnelPair } from './ztunnel-pair.ts';

const CLIENT_IP = '127.0.94.2';
const SERVER_IP = '127.0.94.3';
const MIB = 1024 * 1024;

export interface SoakOptions {
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly sampleMs: number;
  /** Requests per second over the persistent connections. */
  readonly rate: number;
  readonly connections: number;
  /** New connections per second (0: none). */
  readonly churnRate: number;
  readonly size: number;
  /** Extra NODE_OPTIONS for the ztunnels (e.g. --max-semi-space-size=16). */
  readonly ztunnelNodeOptions: string;
  /** Heap snapshots at start and end (they cost the process ~100 MiB of malloc'd RSS: off for RSS runs). */
  readonly snapshots: boolean;
  /** Where the heap snapshots are kept (default: a temp dir, removed at the end). */
  readonly snapshotDir: string | null;
}

export function soakOptionsFromEnv(env: NodeJS.ProcessEnv): SoakOptions {
  return {
    durationMs: positiveEnv(env, 'BENCH_SOAK_DURATION_MS', 60_000),
    warmupMs: positiveEnv(env, 'BENCH_WARMUP_MS', 10_000),
    sampleMs: positiveEnv(env, 'BENCH_SAMPLE_MS', 5_000),
    rate: positiveEnv(env, 'BENCH_RATE', 1000),
    connections: positiveEnv(env, 'BENCH_CONNECTIONS', 16),
    churnRate: nonNegativeEnv(env, 'BENCH_CHURN_RATE', 50),
    size: positiveEnv(env, 'BENCH_SIZE', 1024),
    ztunnelNodeOptions: env.BENCH_ZTUNNEL_NODE_OPTIONS ?? '',
    snapshots: (env.BENCH_SOAK_SNAPSHOTS ?? '1') !== '0',
    snapshotDir: env.BENCH_SNAPSHOT_DIR ?? null,
  };
}

function meshYaml(): string {
  return `workloads:
- uid: Kubernetes//Pod/soak/client
  name: client
  namespace: soak
  serviceAccount: client
  workloadIps: ["${CLIENT_IP}"]
  protocol: HBONE
  node: soak-a
- uid: Kubernetes//Pod/soak/server
  name: server
  namespace: soak
  serviceAccount: server
  workloadIps: ["${SERVER_IP}"]
  protocol: HBONE
  node: soak-b
`;
}

interface Observed {
  readonly name: 'a' | 'b';
  readonly pid: number;
  readonly inspector: InspectorClient;
}

interface Sample {
  readonly tS: number;
  readonly rssMb: number;
  readonly heapUsedMb: number;
  readonly heapTotalMb: number;
  readonly externalMb: number;
}

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

const mb = (bytes: number) => r3(bytes / MIB);

async function sample(o: Observed, t0: number): Promise<Sample> {
  const m = await o.inspector.memoryUsage();
  return {
    tS: Math.round((performance.now() - t0) / 1000),
    rssMb: r3(rssMb(o.pid)),
    heapUsedMb: mb(m.heapUsed),
    heapTotalMb: mb(m.heapTotal),
    externalMb: mb(m.external + m.arrayBuffers),
  };
}

interface Checkpoint {
  /** After a full, memory-reducing GC: the live heap, and the RSS that is left. */
  readonly memory: MemoryUsage;
  readonly rssMb: number;
  /** The RSS the snapshot left behind (its graph is malloc'd), or null without one. */
  readonly rssAfterSnapshotMb: number | null;
  readonly summary: HeapSummary | null;
}

/** A full GC, then the live heap and RSS; then (optionally) a heap snapshot summarized by constructor. */
async function checkpoint(o: Observed, dir: string, label: string, withSnapshot: boolean): Promise<Checkpoint> {
  await o.inspector.collectGarbage();
  const memory = await o.inspector.memoryUsage();
  const rss = r3(rssMb(o.pid));
  if (!withSnapshot) return { memory, rssMb: rss, rssAfterSnapshotMb: null, summary: null };
  const path = join(dir, `ztunnel-${o.name}-${label}.heapsnapshot`);
  await o.inspector.takeHeapSnapshot(path);
  const rssAfterSnapshotMb = r3(rssMb(o.pid));
  return { memory, rssMb: rss, rssAfterSnapshotMb, summary: await summarizeHeapSnapshot(path) };
}

export async function runZtunnelSoak(o: SoakOptions = soakOptionsFromEnv(process.env)): Promise<number> {
  await using stack = new AsyncDisposableStack();
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-soak-'));
  stack.defer(() => rm(dir, { recursive: true, force: true }));
  const snapshotDir = o.snapshotDir ?? dir;

  const echo = stack.use(await startBackend('echo', SERVER_IP, null));
  const {
    a: zA,
    b: zB,
    socks5: socks,
  } = await startZtunnelPair(stack, {
    dir,
    meshYaml: meshYaml(),
    nodes: ['soak-a', 'soak-b'],
    nodeOptions: [process.env.NODE_OPTIONS, o.ztunnelNodeOptions, '--inspect=127.0.0.1:0'],
  });
  const observed: Observed[] = [];
  for (const [name, p] of [
    ['a', zA],
    ['b', zB],
  ] as const) {
    const inspector = await InspectorClient.connect(await waitForInspectorUrl(p.text));
    stack.defer(() => inspector.close());
    observed.push({ name, pid: p.child.pid ?? 0, inspector });
  }
  const loadArgs = (durationMs: number): string[] => [
    ...['--target', `${SERVER_IP}:${echo.port}`, '--source', CLIENT_IP, '--socks5', socks],
    ...['--connections', String(o.connections), '--rate', String(o.rate), '--size', String(o.size)],
    ...['--duration-ms', String(durationMs)],
  ];
  const churnArgs = (durationMs: number): string[] => [
    ...['--target', `${SERVER_IP}:${echo.port}`, '--source', CLIENT_IP, '--socks5', socks],
    ...['--rate', String(o.churnRate), '--size', String(o.size), '--duration-ms', String(durationMs)],
  ];
  const load = (durationMs: number) =>
    Promise.all([
      runLoadgen(loadArgs(durationMs), null),
      o.churnRate > 0 ? runJsonChild('conn-churn.ts', churnArgs(durationMs), null) : Promise.resolve(null),
    ]);

  await new Promise((r) => setTimeout(r, 1000));
  const idle = Object.fromEntries(observed.map((z) => [z.name, r3(rssMb(z.pid))]));
  say(`ztunnels ready (pids ${observed.map((z) => z.pid).join(', ')}); idle RSS a ${idle.a} / b ${idle.b} MiB`);

  // Warm-up (V8 optimizes the hot paths, the pooled HBONE connection opens), then the start snapshot.
  await load(o.warmupMs);
  const rssAfterWarmup = observed.map((z) => r3(rssMb(z.pid)));
  const start = await Promise.all(observed.map((z) => checkpoint(z, snapshotDir, 'start', o.snapshots)));
  say(
    `start (after ${o.warmupMs} ms warm-up, load stopped, full GC): ` +
      observed
        .map(
          (z, i) =>
            `${z.name}: RSS ${rssAfterWarmup[i]} → ${start[i]?.rssMb}` +
            (o.snapshots ? ` (after the snapshot ${start[i]?.rssAfterSnapshotMb})` : '') +
            ` MiB, live heap ${mb(start[i]?.memory.heapUsed ?? 0)} MiB`,
        )
        .join('; '),
  );

  const t0 = performance.now();
  const samples = new Map<string, Sample[]>(observed.map((z) => [z.name, []]));
  const cpuBefore = observed.map((z) => cpuSeconds(z.pid));
  const takeSamples = async () => {
    const row = await Promise.all(observed.map((z) => sample(z, t0)));
    row.forEach((s, i) => {
      samples.get(observed[i]?.name ?? '')?.push(s);
    });
    say(
      `  t=${String(row[0]?.tS).padStart(5)} s  ` +
        row
          .map(
            (s, i) =>
              `${observed[i]?.name}: rss ${s.rssMb.toFixed(1)} heapUsed ${s.heapUsedMb.toFixed(1)} heapTotal ${s.heapTotalMb.toFixed(1)} ext ${s.externalMb.toFixed(1)}`,
          )
          .join('  |  '),
    );
  };
  await takeSamples();
  const timer = setInterval(() => void takeSamples().catch(() => undefined), o.sampleMs);
  let loadResult: Awaited<ReturnType<typeof load>>;
  try {
    loadResult = await load(o.durationMs);
  } finally {
    clearInterval(timer);
  }
  await takeSamples();
  const cpu = observed.map((z, i) => cpuSeconds(z.pid) - (cpuBefore[i] ?? 0));
  const [lg, churn] = loadResult;
  say(
    `load: ${lg.completed}/${lg.requests} requests (${lg.errors} errors, p99 ${lg.p99_ms} ms)` +
      (churn === null
        ? ''
        : `, ${churn.completed}/${churn.connections} new connections (${churn.errors} errors, ${churn.skipped} skipped, connect p99 ${churn.connect_p99_ms} ms)`),
  );

  await new Promise((r) => setTimeout(r, 1000)); // connections closed, access logs flushed
  const rssEndIdle = observed.map((z) => r3(rssMb(z.pid)));
  const end = await Promise.all(observed.map((z) => checkpoint(z, snapshotDir, 'end', o.snapshots)));

  const perZtunnel = observed.map((z, i) => {
    const s = samples.get(z.name) ?? [];
    const values = (k: keyof Sample) => s.map((x) => x[k]);
    const first = s[0];
    const last = s[s.length - 1];
    const before = start[i]?.summary ?? null;
    const after = end[i]?.summary ?? null;
    const deltas = before === null || after === null ? [] : compareHeapSummaries(before, after, 12);
    if (deltas.length > 0) say(`ztunnel ${z.name}: heap snapshot start → end, largest changes by self size:`);
    for (const line of formatDeltas(deltas)) say(`    ${line}`);
    return {
      ztunnel: z.name,
      rss_idle_mb: idle[z.name],
      rss_after_warmup_mb: rssAfterWarmup[i],
      rss_start_mb: first?.rssMb,
      rss_max_mb: Math.max(...values('rssMb')),
      rss_end_mb: last?.rssMb,
      rss_end_idle_mb: rssEndIdle[i],
      rss_after_reducing_gc_mb: end[i]?.rssMb,
      rss_after_start_snapshot_mb: start[i]?.rssAfterSnapshotMb ?? null,
      heap_used_min_mb: Math.min(...values('heapUsedMb')),
      heap_used_max_mb: Math.max(...values('heapUsedMb')),
      heap_total_max_mb: Math.max(...values('heapTotalMb')),
      live_heap_start_mb: mb(start[i]?.memory.heapUsed ?? Number.NaN),
      live_heap_end_mb: mb(end[i]?.memory.heapUsed ?? Number.NaN),
      snapshot_objects_start: before?.nodes ?? null,
      snapshot_objects_end: after?.nodes ?? null,
      cpu_seconds: r3(cpu[i] ?? Number.NaN),
      top_changes: deltas.slice(0, 6).map((d) => ({
        name: d.name,
        count: [d.countBefore, d.countAfter],
        kib: [Math.round(d.bytesBefore / 1024), Math.round(d.bytesAfter / 1024)],
      })),
    };
  });
  say(
    JSON.stringify({
      bench: 'ztunnel-soak',
      duration_ms: o.durationMs,
      rate: o.rate,
      connections: o.connections,
      churn_rate: o.churnRate,
      ztunnel_node_options: o.ztunnelNodeOptions,
      requests: lg.completed,
      request_errors: lg.errors,
      new_connections: churn?.completed ?? 0,
      new_connection_errors: churn?.errors ?? 0,
      per_ztunnel: perZtunnel,
    }),
  );
  return 0;
}
