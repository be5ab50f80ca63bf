// `npm run bench -- waypoint` (root): the waypoint benchmark of issue 5, side by side in one local cluster.
// mesh: client pod → ztunnel (node 0) → waypoint (HTTPRoute to the echo Service) → ztunnel (node 1) → echo
// pod, all HBONE mTLS; direct: a client pod outside the mesh → an echo pod outside the mesh, plain HTTP
// over the bridge. Same load in both (fixed rate, keep-alive HTTP/1.1, 1 KiB POSTs echoed), sides
// alternated ABBA. Reports added p50/p90/p99, the waypoint's CPU per 1000 requests/s (/proc), its RSS,
// and the ztunnels' CPU. The cluster is torn down at the end, also on error. Last line: one JSON object.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMeshConfig } from '../src/local-cluster/controller/mesh-files.ts';
import { privilegeProblem } from '../testkit/privileged.ts';
import { cpuSeconds, rssMb } from './proc.ts';
import { nonNegativeEnv, positiveEnv, r3 } from './report.ts';
import { parseWrk, startWaypointHaproxy, type WaypointHaproxy, writeWrkScript } from './waypoint-haproxy.ts';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const LOADGEN = fileURLToPath(new URL('./http-loadgen.ts', import.meta.url));
const CLUSTER = `ferrybench-wp-${process.pid}`;
const PCTS = ['p50_ms', 'p90_ms', 'p99_ms'] as const;

// The mesh namespace's HTTPRoute splits the echo Service 70/30 over echo-a and echo-b (issue 12's shape);
// the plain namespace has the same pods for the direct and HAProxy sides, plus plain/hap for HAProxy L7.
const SPLIT = { a: 70, b: 30 } as const;
const MANIFESTS = `
apiVersion: v1
kind: Namespace
metadata: {name: wpbench, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}
---
apiVersion: v1
kind: Namespace
metadata: {name: plain}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: wpbench}
spec: {gatewayClassName: ferry-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: wpbench}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules: [{backendRefs: [{name: echo-a, port: 80, weight: ${SPLIT.a}}, {name: echo-b, port: 80, weight: ${SPLIT.b}}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: hap, namespace: plain}
spec: {nodeName: node-0, containers: [{name: c, image: ferry/sleep, command: [sleep, infinity]}]}
`.concat(
  ...['wpbench', 'plain'].map(
    (ns) => `
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: ${ns}}
spec: {nodeName: node-0, containers: [{name: c, image: curlimages/curl, command: [sleep, infinity]}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: ${ns}}
spec: {selector: {app: echo}, ports: [{name: http, port: 80, targetPort: 8080, appProtocol: http}]}
${['a', 'b']
  .map(
    (v) => `---
apiVersion: v1
kind: Pod
metadata: {name: echo-${v}, namespace: ${ns}, labels: {app: echo, version: ${v}}}
spec: {nodeName: node-1, containers: [{name: echo, image: ferry/echo, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo-${v}, namespace: ${ns}}
spec: {selector: {app: echo, version: ${v}}, ports: [{name: http, port: 80, targetPort: 8080, appProtocol: http}]}
`,
  )
  .join('')}`,
  ),
);

function ferry(
  env: NodeJS.ProcessEnv,
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

interface Status {
  readonly pods: readonly { namespace: string; name: string; ip: string }[];
  readonly services: readonly { namespace: string; name: string; vip: string | null }[];
}

type Side = 'direct' | 'mesh' | 'haproxy' | 'haproxy_mtls';
const ALL_SIDES: readonly Side[] = ['direct', 'mesh', 'haproxy', 'haproxy_mtls'];

/** BENCH_SIDES: a comma-separated subset of the sides (default all; direct is always run). */
function sidesFromEnv(env: NodeJS.ProcessEnv): Side[] {
  const text = env.BENCH_SIDES ?? ALL_SIDES.join(',');
  const picked = text.split(',').map((s) => s.trim().replace('-', '_'));
  const bad = picked.filter((s) => !(ALL_SIDES as readonly string[]).includes(s));
  if (bad.length > 0) throw new Error(`BENCH_SIDES: unknown side(s) ${bad.join(', ')}; known: ${ALL_SIDES.join(', ')}`);
  return ALL_SIDES.filter((s) => s === 'direct' || picked.includes(s));
}

export async function runWaypoint(): Promise<number> {
  const problem = privilegeProblem();
  if (problem !== null) {
    process.stderr.write(`bench waypoint: ${problem}\n`);
    return 2;
  }
  const rate = positiveEnv(process.env, 'BENCH_RATE', 1000);
  const durationMs = positiveEnv(process.env, 'BENCH_DURATION_MS', 8000);
  const connections = positiveEnv(process.env, 'BENCH_CONNECTIONS', 16);
  const rounds = positiveEnv(process.env, 'BENCH_ROUNDS', 2);
  const size = positiveEnv(process.env, 'BENCH_SIZE', 1024);
  // wrk -t1 -c<connections> for this long per side (0: no maximum-rate runs).
  const maxRateMs = nonNegativeEnv(process.env, 'BENCH_MAX_RATE_MS', 5000);
  const sides = sidesFromEnv(process.env);
  // Unmeasured load before each run: the first ~0.5 s of load after idling pays for JIT tier-up and heap
  // growth in every process on the path (a ~100 ms pause seen in the waypoint's first second).
  const warmupMs = nonNegativeEnv(process.env, 'BENCH_WARMUP_MS', 2000);
  const stateRoot = await mkdtemp(join(tmpdir(), 'ferry-bench-wp-'));
  // BENCH_PROFILE_DIR: the waypoint writes a V8 CPU profile there (stopped with SIGTERM before ferry down).
  const profileDir = process.env.BENCH_PROFILE_DIR;
  const env = {
    ...process.env,
    FERRY_STATE_DIR: stateRoot,
    ...(profileDir
      ? {
          FERRY_WAYPOINT_NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profileDir} ${process.env.FERRY_WAYPOINT_NODE_OPTIONS ?? ''}`,
          // BENCH_PROFILE_ZTUNNELS=0: profile the waypoint only. The profiler's SIGPROF can interrupt the
          // kernel verifier while a ztunnel loads its BPF programs (EAGAIN, FERRY_BPF_LOAD_FAILED) on a
          // loaded machine.
          ...(process.env.BENCH_PROFILE_ZTUNNELS === '0'
            ? {}
            : {
                FERRY_ZTUNNEL_NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profileDir} ${process.env.FERRY_ZTUNNEL_NODE_OPTIONS ?? ''}`,
              }),
        }
      : {}),
  };
  let waypointPid = 0;
  let hap: WaypointHaproxy | null = null;
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-wp-manifests-'));
  await writeFile(join(dir, 'bench.yaml'), MANIFESTS);
  try {
    const loadStart = loadavg().map(r3);
    process.stdout.write(`bench waypoint: ferry up (cluster ${CLUSTER}), sides ${sides.join(', ')}\n`);
    const up = await ferry(env, ['up', '-f', dir, '--nodes', '2', '--cluster', CLUSTER]);
    if (up.code !== 0) throw new Error(`ferry up failed:\n${up.stdout}\n${up.stderr}`);
    const status = JSON.parse((await ferry(env, ['status', '--json', '--cluster', CLUSTER])).stdout) as Status;
    const podIp = (ns: string, name: string): string => {
      const ip = status.pods.find((p) => p.namespace === ns && p.name === name)?.ip;
      if (ip === undefined) throw new Error(`bench cluster has no pod ${ns}/${name}`);
      return ip;
    };
    const vip = status.services.find((s) => s.namespace === 'wpbench' && s.name === 'echo')?.vip;
    if (vip == null) throw new Error('bench cluster is missing the echo service VIP');
    const waypoints = JSON.parse(await readFile(join(stateRoot, CLUSTER, 'waypoints.json'), 'utf8')) as {
      pid: number;
    }[];
    waypointPid = waypoints[0]?.pid ?? 0;
    const ztunnelPids = ztunnelPidsOf(CLUSTER);
    const execArgv = [process.execPath, MAIN, 'exec', '--cluster', CLUSTER];
    if (sides.some((s) => s.startsWith('haproxy'))) {
      hap = await startWaypointHaproxy({
        execArgv,
        env,
        dir,
        ips: {
          hap: podIp('plain', 'hap'),
          echo: [
            { ip: podIp('plain', 'echo-a'), weight: SPLIT.a },
            { ip: podIp('plain', 'echo-b'), weight: SPLIT.b },
          ],
        },
        echoPort: 8080,
      });
    }
    const clientOf = (s: Side) => (s === 'mesh' ? 'wpbench/client' : 'plain/client');
    // BENCH_MESH_PATH=ztunnel: the meshed client calls the echo pod by IP, which skips the waypoint (it
    // serves the Service), to tell the waypoint's share from the two ztunnels'.
    const meshTarget =
      process.env.BENCH_MESH_PATH === 'ztunnel' ? `http://${podIp('wpbench', 'echo-a')}:8080/` : `http://${vip}/`;
    const target: Record<Side, string> = {
      mesh: meshTarget,
      direct: `http://${podIp('plain', 'echo-a')}:8080/`,
      haproxy: hap?.url.plain ?? '',
      haproxy_mtls: hap?.url.mtls ?? '',
    };
    // CPU of each side's proxies: the full path, and the L7 proxy alone.
    const l7Pid = (s: Side): number[] =>
      s === 'mesh'
        ? [waypointPid]
        : s === 'haproxy'
          ? [hap?.pids.plain ?? 0]
          : s === 'haproxy_mtls'
            ? [hap?.pids.mtls ?? 0]
            : [];
    const pathPids = (s: Side): number[] =>
      s === 'mesh'
        ? [waypointPid, ...ztunnelPids]
        : s === 'haproxy_mtls'
          ? [...l7Pid(s), ...(hap?.pids.sidecars ?? [])]
          : l7Pid(s);
    const cpuOf = (pids: readonly number[]) => pids.reduce((a, p) => a + cpuSeconds(p), 0);
    const runs = Object.fromEntries(ALL_SIDES.map((s) => [s, [] as Record<string, number>[]])) as Record<
      Side,
      Record<string, number>[]
    >;
    const cost = Object.fromEntries(ALL_SIDES.map((s) => [s, { l7: 0, path: 0, completed: 0 }])) as Record<
      Side,
      { l7: number; path: number; completed: number }
    >;
    const idleRss = Object.fromEntries(sides.map((s) => [s, rssMb(l7Pid(s)[0] ?? 0)])) as Record<Side, number>;
    const loadRss = { ...idleRss };
    const order: Side[] = [];
    for (let i = 0; i < rounds; i++) order.push(...(i % 2 === 0 ? sides : [...sides].reverse()));
    for (const s of order) {
      const before = { l7: cpuOf(l7Pid(s)), path: cpuOf(pathPids(s)) };
      const r = await ferry(env, [
        'exec',
        '--cluster',
        CLUSTER,
        clientOf(s),
        '--',
        process.execPath,
        LOADGEN,
        ...['--url', target[s], '--rate', String(rate), '--duration-ms', String(durationMs)],
        ...['--connections', String(connections), '--warmup-ms', String(warmupMs), '--size', String(size)],
        ...(process.env.BENCH_TIMELINE === '1' ? ['--timeline'] : []),
      ]);
      const last = r.stdout.trim().split('\n').pop() ?? '';
      if (r.code !== 0 || !last.startsWith('{')) throw new Error(`loadgen (${s}) failed: ${r.stderr.slice(-1000)}`);
      const result = JSON.parse(last) as Record<string, number>;
      runs[s].push(result);
      if (s !== 'direct') {
        cost[s].l7 += cpuOf(l7Pid(s)) - before.l7;
        cost[s].path += cpuOf(pathPids(s)) - before.path;
        cost[s].completed += (result.completed ?? 0) + (result.warmup_completed ?? 0);
        loadRss[s] = Math.max(loadRss[s], rssMb(l7Pid(s)[0] ?? 0));
      }
      process.stdout.write(`  ${s.padEnd(12)} ${JSON.stringify(result)}\n`);
    }
    // Maximum rate: wrk -t1 -c<connections> per side, alternated; proxies' CPU use meanwhile (vCPU).
    const maxRate: Partial<Record<Side, { rps: number; errors: number; path_vcpu: number; l7_vcpu: number }>> = {};
    if (maxRateMs > 0) {
      const script = await writeWrkScript(dir, size);
      for (const s of [...sides].reverse()) {
        const before = { l7: cpuOf(l7Pid(s)), path: cpuOf(pathPids(s)) };
        const r = await ferry(env, [
          ...['exec', '--cluster', CLUSTER, clientOf(s), '--', 'wrk', '-t1', `-c${connections}`],
          ...[`-d${Math.round(maxRateMs / 1000)}s`, '-s', script, target[s]],
        ]);
        if (r.code !== 0) throw new Error(`wrk (${s}) failed: ${r.stderr.slice(-1000)}`);
        const w = parseWrk(r.stdout);
        const secs = Math.round(maxRateMs / 1000);
        maxRate[s] = {
          rps: Math.round(w.rps),
          errors: w.non2xx + w.socketErrors,
          l7_vcpu: r3((cpuOf(l7Pid(s)) - before.l7) / secs),
          path_vcpu: r3((cpuOf(pathPids(s)) - before.path) / secs),
        };
        if (s !== 'direct') loadRss[s] = Math.max(loadRss[s], rssMb(l7Pid(s)[0] ?? 0));
        process.stdout.write(`  max rate ${s.padEnd(12)} ${JSON.stringify(maxRate[s])}\n`);
      }
    }
    const avg = (s: Side, k: string) => runs[s].reduce((a, r) => a + (r[k] ?? Number.NaN), 0) / runs[s].length;
    const perSide = Object.fromEntries(
      sides.map((s) => [
        s,
        {
          ...Object.fromEntries(PCTS.map((p) => [p, r3(avg(s, p))])),
          achieved_rps: r3(avg(s, 'achieved_rps')),
          errors: runs[s].reduce((a, r) => a + (r.errors ?? 0), 0),
          ...(s === 'direct'
            ? {}
            : {
                added_p50_ms: r3(avg(s, 'p50_ms') - avg('direct', 'p50_ms')),
                added_p99_ms: r3(avg(s, 'p99_ms') - avg('direct', 'p99_ms')),
                l7_cpu_per_1000rps: r3((cost[s].l7 / cost[s].completed) * 1000),
                path_cpu_per_1000rps: r3((cost[s].path / cost[s].completed) * 1000),
                l7_rss_idle_mb: r3(idleRss[s]),
                l7_rss_load_mb: r3(loadRss[s]),
              }),
          ...(maxRate[s] === undefined ? {} : { max_rate: maxRate[s] }),
        },
      ]),
    ) as unknown as Partial<Record<Side, Record<string, number>>>;
    // Ferry ÷ HAProxy (same run) for every metric both have: > 1 means Ferry costs more / is slower.
    const ratio = (other: Side) => {
      const m = perSide.mesh;
      const h = perSide[other];
      if (m === undefined || h === undefined) return undefined;
      const q = (k: string) => r3((m[k] ?? Number.NaN) / (h[k] ?? Number.NaN));
      return {
        p50: q('p50_ms'),
        p99: q('p99_ms'),
        l7_cpu: q('l7_cpu_per_1000rps'),
        path_cpu: q('path_cpu_per_1000rps'),
        l7_rss_load: q('l7_rss_load_mb'),
        max_rate: r3((maxRate.mesh?.rps ?? Number.NaN) / (maxRate[other]?.rps ?? Number.NaN)),
      };
    };
    const summary = {
      bench: 'waypoint',
      rate,
      duration_ms: durationMs,
      connections,
      rounds,
      split: SPLIT,
      loadavg_start: loadStart,
      loadavg_end: loadavg().map(r3),
      sides: perSide,
      ferry_vs_haproxy: ratio('haproxy'),
      ferry_vs_haproxy_mtls: ratio('haproxy_mtls'),
      // The issue-5 fields, kept for comparison with earlier runs.
      waypoint_cpu_per_1000rps: perSide.mesh?.l7_cpu_per_1000rps,
      waypoint_rss_idle_mb: perSide.mesh?.l7_rss_idle_mb,
      waypoint_rss_load_mb: perSide.mesh?.l7_rss_load_mb,
    };
    process.stdout.write('\n');
    for (const s of sides) process.stdout.write(`${s.padEnd(12)} ${JSON.stringify(perSide[s])}\n`);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  } finally {
    if (profileDir && waypointPid > 0) {
      await saveMetrics(join(stateRoot, CLUSTER), profileDir);
      await Promise.all([waypointPid, ...ztunnelPidsOf(CLUSTER)].map(stopForProfile));
      await cp(join(stateRoot, CLUSTER, 'logs'), join(profileDir, 'logs'), { recursive: true }).catch(() => undefined);
    }
    hap?.stop();
    const down = await ferry(env, ['down', '--cluster', CLUSTER]);
    if (down.code !== 0) process.stderr.write(`bench waypoint: ferry down failed: ${down.stderr}\n`);
    await rm(stateRoot, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
}

/** The /metrics text of both ztunnels and the waypoint (traffic series, process figures), into `dir`. */
async function saveMetrics(stateDir: string, dir: string): Promise<void> {
  const mesh = await readMeshConfig(stateDir);
  const waypoints = JSON.parse(await readFile(join(stateDir, 'waypoints.json'), 'utf8')) as { metrics: string }[];
  const targets = [
    ...mesh.nodes.map((n) => [`ztunnel-${n.name}`, n.metrics] as const),
    ...waypoints.map((w, i) => [`waypoint-${i}`, w.metrics] as const),
  ];
  for (const [name, address] of targets) {
    const text = await fetch(`http://${address}/metrics`)
      .then((r) => r.text())
      .catch((e: Error) => `# ${e.message}\n`);
    await writeFile(join(dir, `${name}.metrics.txt`), text);
  }
}

/** SIGTERM, then up to 10 s for the process to exit (and so write its --cpu-prof file). */
async function stopForProfile(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The ztunnel processes of a local cluster, found by their command line. */
function ztunnelPidsOf(cluster: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes('\0ztunnel\0') && cmd.includes(`/${cluster}/`)) out.push(Number(entry));
    } catch {}
  }
  return out;
}
