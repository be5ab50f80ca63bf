// `npm run bench -- startup` (issue 12): what a ztunnel costs before any traffic, per way of starting it.
// Variants, alternated over BENCH_STARTUP_ROUNDS rounds: `strip` (Node type-strips every module at start,
// NODE_COMPILE_CACHE off), `cache` (Ferry's default: modules from the compile cache, src/runtime/
// compile-cache.ts; filled by a first unmeasured start) and `cache+flags` (plus BENCH_STARTUP_FLAGS, V8
// flags to try). Each start: a CA and two ztunnels on loopback (bench/ztunnel-pair.ts); reported per
// ztunnel: ms from spawn to "ztunnel ready", CPU seconds spent until then, RSS 1 s after ready.
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, rssMb } from './proc.ts';
import { positiveEnv, r3 } from './report.ts';
import { startZtunnelPair } from './ztunnel-pair.ts';

const MESH = `workloads:
- {uid: Kubernetes//Pod/bench/a, name: a, namespace: bench, serviceAccount: a, workloadIps: ["127.0.94.2"], protocol: HBONE, node: su-a}
- {uid: Kubernetes//Pod/bench/b, name: b, namespace: bench, serviceAccount: b, workloadIps: ["127.0.94.3"], protocol: HBONE, node: su-b}
`;

interface Sample {
  readonly readyMs: number;
  readonly cpuS: number;
  readonly rssMb: number;
}

async function startOnce(dir: string, cacheEnv: string, flags: string): Promise<Sample[]> {
  const saved = process.env.NODE_COMPILE_CACHE;
  process.env.NODE_COMPILE_CACHE = cacheEnv; // read by spawnFerry (src/cli/child-process.ts)
  const stack = new AsyncDisposableStack();
  try {
    const t0 = performance.now();
    const pair = await startZtunnelPair(stack, { dir, meshYaml: MESH, nodes: ['su-a', 'su-b'], nodeOptions: [flags] });
    const readyMs = performance.now() - t0;
    const pids = [pair.a.child.pid ?? 0, pair.b.child.pid ?? 0];
    const cpu = pids.map(cpuSeconds);
    await new Promise((r) => setTimeout(r, 1000));
    return pids.map((pid, i) => ({ readyMs, cpuS: cpu[i] ?? Number.NaN, rssMb: rssMb(pid) }));
  } finally {
    await stack.disposeAsync();
    if (saved === undefined) delete process.env.NODE_COMPILE_CACHE;
    else process.env.NODE_COMPILE_CACHE = saved;
  }
}

export async function runStartup(): Promise<number> {
  const rounds = positiveEnv(process.env, 'BENCH_STARTUP_ROUNDS', 3);
  const flags = process.env.BENCH_STARTUP_FLAGS ?? '--v8-pool-size=1';
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-startup-'));
  const cacheDir = join(dir, 'compile-cache');
  const variants = { strip: ['', ''], cache: [cacheDir, ''], 'cache+flags': [cacheDir, flags] } as const;
  type Variant = keyof typeof variants;
  const samples: Record<Variant, Sample[]> = { strip: [], cache: [], 'cache+flags': [] };
  try {
    await startOnce(dir, cacheDir, ''); // fills the cache
    const names = Object.keys(variants) as Variant[];
    for (let i = 0; i < rounds; i++) {
      for (const v of i % 2 === 0 ? names : [...names].reverse()) {
        const [cache, f] = variants[v];
        const got = await startOnce(dir, cache, f);
        samples[v].push(...got);
        process.stdout.write(
          `  ${v.padEnd(12)} ${got.map((s) => `ready ${s.readyMs.toFixed(0)} ms, CPU ${s.cpuS.toFixed(2)} s, RSS ${s.rssMb.toFixed(1)} MiB`).join(' | ')}\n`,
        );
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const mean = (v: Variant, k: keyof Sample) => r3(samples[v].reduce((a, s) => a + s[k], 0) / samples[v].length);
  const summary = {
    bench: 'startup',
    rounds,
    flags,
    loadavg: loadavg().map(r3),
    ...Object.fromEntries(
      (Object.keys(variants) as Variant[]).map((v) => [
        v,
        { pair_ready_ms: mean(v, 'readyMs'), cpu_s_at_ready: mean(v, 'cpuS'), rss_idle_mb: mean(v, 'rssMb') },
      ]),
    ),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return 0;
}
