// `npm run bench -- startup` (issue 12): what a ztunnel and a waypoint cost before any traffic, per way of
// starting them. Variants (BENCH_STARTUP_VARIANTS, alternated over BENCH_STARTUP_ROUNDS rounds): `strip`
// (Node type-strips every module at start, NODE_COMPILE_CACHE off), `cache` (Ferry's default: modules from
// the compile cache, src/runtime/compile-cache.ts; filled by a first unmeasured start), `cache+flags` (plus
// BENCH_STARTUP_FLAGS, V8 flags to try) and `before` (as `cache`, but every process runs from the checkout
// in BENCH_STARTUP_BEFORE: a before/after comparison of two trees in one run). Each start: a CA and two
// ztunnels on loopback (bench/ztunnel-pair.ts), then a waypoint with a static config asking the same CA
// (BENCH_STARTUP_WAYPOINT=0 skips it); reported per process: ms from spawn to ready, CPU seconds until
// then, RSS 1 s after ready.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FerryProcess, spawnFerry } from '../src/cli/child-process.ts';
import { cpuSeconds, rssMb } from './proc.ts';
import { positiveEnv, r3 } from './report.ts';
import { startZtunnelPair } from './ztunnel-pair.ts';

const MESH = `workloads:
- {uid: Kubernetes//Pod/bench/a, name: a, namespace: bench, serviceAccount: a, workloadIps: ["127.0.94.2"], protocol: HBONE, node: su-a}
- {uid: Kubernetes//Pod/bench/b, name: b, namespace: bench, serviceAccount: b, workloadIps: ["127.0.94.3"], protocol: HBONE, node: su-b, services: {"bench/echo.bench.svc.cluster.local": {80: 8080}}}
services:
- {name: echo, namespace: bench, hostname: echo.bench.svc.cluster.local, vips: ["/10.96.94.10"], ports: {80: 8080}, waypoint: {destination: "/127.0.94.4", hboneMtlsPort: 15008}}
`;
const WAYPOINT_CONFIG = `${MESH}httpRoutes:
- metadata: {name: echo, namespace: bench}
  spec:
    parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
    rules: [{backendRefs: [{name: echo, port: 80}]}]
`;

const VARIANT_NAMES = ['strip', 'cache', 'cache+flags', 'before'] as const;
type Variant = (typeof VARIANT_NAMES)[number];

interface Sample {
  readonly readyMs: number;
  readonly cpuS: number;
  readonly rssMb: number;
}

interface StartOptions {
  readonly dir: string;
  readonly cacheEnv: string;
  readonly flags: string;
  readonly main: string | undefined;
  readonly waypoint: boolean;
}

interface StartSamples {
  readonly ztunnels: Sample[];
  readonly waypoint: Sample | null;
}

async function settledSample(pid: number, readyMs: number): Promise<Sample> {
  const cpuS = cpuSeconds(pid);
  await new Promise((r) => setTimeout(r, 1000));
  return { readyMs, cpuS, rssMb: rssMb(pid) };
}

async function startWaypoint(stack: AsyncDisposableStack, o: StartOptions, ca: FerryProcess): Promise<Sample> {
  const configPath = join(o.dir, 'waypoint.yaml');
  await writeFile(configPath, WAYPOINT_CONFIG);
  const caAddress = String((await ca.waitFor((l) => l.msg === 'CA ready', 'CA ready')).address);
  const env = { ...process.env, NODE_OPTIONS: o.flags };
  const t0 = performance.now();
  const wp = stack.use(
    spawnFerry(
      'waypoint',
      [
        ...['waypoint', '--waypoint', 'bench/waypoint', '--config', configPath, '--listen', '127.0.0.1:0'],
        ...['--ca-address', caAddress, '--ca-root', join(o.dir, 'root-cert.pem')],
        ...['--admin', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--readiness', '127.0.0.1:0'],
      ],
      env,
      o.main,
    ),
  );
  await wp.waitFor((l) => l.msg === 'waypoint ready', 'waypoint ready');
  return settledSample(wp.child.pid ?? 0, performance.now() - t0);
}

async function startOnce(o: StartOptions): Promise<StartSamples> {
  const saved = process.env.NODE_COMPILE_CACHE;
  process.env.NODE_COMPILE_CACHE = o.cacheEnv; // read by spawnFerry (src/cli/child-process.ts)
  const stack = new AsyncDisposableStack();
  try {
    const t0 = performance.now();
    const pair = await startZtunnelPair(stack, {
      dir: o.dir,
      meshYaml: MESH,
      nodes: ['su-a', 'su-b'],
      nodeOptions: [o.flags],
      ...(o.main === undefined ? {} : { main: o.main }),
    });
    const readyMs = performance.now() - t0;
    const ztunnels = await Promise.all(
      [pair.a.child.pid ?? 0, pair.b.child.pid ?? 0].map((pid) => settledSample(pid, readyMs)),
    );
    const waypoint = o.waypoint ? await startWaypoint(stack, o, pair.ca) : null;
    return { ztunnels, waypoint };
  } finally {
    await stack.disposeAsync();
    if (saved === undefined) delete process.env.NODE_COMPILE_CACHE;
    else process.env.NODE_COMPILE_CACHE = saved;
  }
}

function parseVariants(env: NodeJS.ProcessEnv): Variant[] {
  const raw = env.BENCH_STARTUP_VARIANTS ?? (env.BENCH_STARTUP_BEFORE ? 'cache,before' : 'strip,cache,cache+flags');
  const names = raw.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!(VARIANT_NAMES as readonly string[]).includes(n)) {
      throw new Error(`BENCH_STARTUP_VARIANTS: unknown variant ${n} (known: ${VARIANT_NAMES.join(', ')})`);
    }
  }
  if (names.includes('before') && !env.BENCH_STARTUP_BEFORE) {
    throw new Error('the before variant needs BENCH_STARTUP_BEFORE=<another checkout with node_modules>');
  }
  return names as Variant[];
}

const line = (label: string, s: Sample): string =>
  `${label} ready ${s.readyMs.toFixed(0)} ms, CPU ${s.cpuS.toFixed(2)} s, RSS ${s.rssMb.toFixed(1)} MiB`;

export async function runStartup(): Promise<number> {
  const rounds = positiveEnv(process.env, 'BENCH_STARTUP_ROUNDS', 3);
  const flags = process.env.BENCH_STARTUP_FLAGS ?? '--v8-pool-size=1';
  const before = process.env.BENCH_STARTUP_BEFORE;
  const beforeMain = before === undefined ? undefined : join(before, 'src/cli/main.ts');
  const waypoint = process.env.BENCH_STARTUP_WAYPOINT !== '0';
  const names = parseVariants(process.env);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-startup-'));
  const cacheDir = join(dir, 'compile-cache');
  const optionsOf = (v: Variant): StartOptions => ({
    dir,
    cacheEnv: v === 'strip' ? '' : cacheDir,
    flags: v === 'cache+flags' ? flags : '',
    main: v === 'before' ? beforeMain : undefined,
    waypoint,
  });
  const samples = new Map<Variant, StartSamples[]>(names.map((v) => [v, []]));
  try {
    await startOnce(optionsOf('cache')); // fills the cache
    if (names.includes('before')) await startOnce(optionsOf('before'));
    for (let i = 0; i < rounds; i++) {
      for (const v of i % 2 === 0 ? names : [...names].reverse()) {
        const got = await startOnce(optionsOf(v));
        samples.get(v)?.push(got);
        const parts = got.ztunnels.map((s) => line('ztunnel', s));
        if (got.waypoint !== null) parts.push(line('waypoint', got.waypoint));
        process.stdout.write(`  ${v.padEnd(12)} ${parts.join(' | ')}\n`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const mean = (list: readonly Sample[], k: keyof Sample) => r3(list.reduce((a, s) => a + s[k], 0) / list.length);
  const summarize = (list: readonly Sample[]) =>
    list.length === 0
      ? null
      : { ready_ms: mean(list, 'readyMs'), cpu_s_at_ready: mean(list, 'cpuS'), rss_idle_mb: mean(list, 'rssMb') };
  const summary = {
    bench: 'startup',
    rounds,
    flags,
    ...(before === undefined ? {} : { before }),
    loadavg: loadavg().map(r3),
    ...Object.fromEntries(
      names.map((v) => {
        const runs = samples.get(v) ?? [];
        return [
          v,
          {
            ztunnel: summarize(runs.flatMap((r) => r.ztunnels)),
            waypoint: summarize(runs.flatMap((r) => (r.waypoint === null ? [] : [r.waypoint]))),
          },
        ];
      }),
    ),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return 0;
}
