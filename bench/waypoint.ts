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

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const LOADGEN = fileURLToPath(new URL('./http-loadgen.ts', import.meta.url));
const CLUSTER = `ferrybench-wp-${process.pid}`;
const PCTS = ['p50_ms', 'p90_ms', 'p99_ms'] as const;

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
  rules: [{backendRefs: [{name: echo, port: 80}]}]
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
kind: Pod
metadata: {name: echo, namespace: ${ns}, labels: {app: echo}}
spec: {nodeName: node-1, containers: [{name: echo, image: ferry/echo, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: ${ns}}
spec: {selector: {app: echo}, ports: [{name: http, port: 80, targetPort: 8080, appProtocol: http}]}
`,
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

export async function runWaypoint(): Promise<number> {
  const problem = privilegeProblem();
  if (problem !== null) {
    process.stderr.write(`bench waypoint: ${problem}\n`);
    return 2;
  }
  const rate = positiveEnv(process.env, 'BENCH_RATE', 1000);
  const durationMs = positiveEnv(process.env, 'BENCH_DURATION_MS', 8000);
  const connections = positiveEnv(process.env, 'BENCH_CONNECTIONS', 8);
  const rounds = positiveEnv(process.env, 'BENCH_ROUNDS', 2);
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
          FERRY_ZTUNNEL_NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profileDir} ${process.env.FERRY_ZTUNNEL_NODE_OPTIONS ?? ''}`,
        }
      : {}),
  };
  let waypointPid = 0;
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-wp-manifests-'));
  await writeFile(join(dir, 'bench.yaml'), MANIFESTS);
  try {
    process.stdout.write(`bench waypoint: ferry up (cluster ${CLUSTER})\n`);
    const up = await ferry(env, ['up', '-f', dir, '--nodes', '2', '--cluster', CLUSTER]);
    if (up.code !== 0) throw new Error(`ferry up failed:\n${up.stdout}\n${up.stderr}`);
    const status = JSON.parse((await ferry(env, ['status', '--json', '--cluster', CLUSTER])).stdout) as Status;
    const vip = status.services.find((s) => s.namespace === 'wpbench' && s.name === 'echo')?.vip;
    const plainEcho = status.pods.find((p) => p.namespace === 'plain' && p.name === 'echo')?.ip;
    if (vip == null || plainEcho === undefined) throw new Error('bench cluster is missing the echo service or pod');
    const waypoints = JSON.parse(await readFile(join(stateRoot, CLUSTER, 'waypoints.json'), 'utf8')) as {
      pid: number;
    }[];
    waypointPid = waypoints[0]?.pid ?? 0;
    const ztunnelPids = ztunnelPidsOf(CLUSTER);
    const side = { mesh: `wpbench/client`, direct: `plain/client` } as const;
    // BENCH_MESH_PATH=ztunnel: the meshed client calls the echo pod by IP, which skips the waypoint (it
    // serves the Service), to tell the waypoint's share from the two ztunnels'.
    const meshEcho = status.pods.find((p) => p.namespace === 'wpbench' && p.name === 'echo')?.ip;
    const meshTarget = process.env.BENCH_MESH_PATH === 'ztunnel' ? `http://${meshEcho}:8080/` : `http://${vip}/`;
    const target = { mesh: meshTarget, direct: `http://${plainEcho}:8080/` } as const;
    const runs: Record<'mesh' | 'direct', Record<string, number>[]> = { mesh: [], direct: [] };
    let cpuWaypoint = 0;
    let cpuZtunnels = 0;
    let meshCompleted = 0;
    const idleRss = rssMb(waypointPid);
    let loadRss = idleRss;
    const order: ('mesh' | 'direct')[] = [];
    for (let i = 0; i < rounds; i++)
      order.push(...(i % 2 === 0 ? (['direct', 'mesh'] as const) : (['mesh', 'direct'] as const)));
    for (const s of order) {
      const before = { wp: cpuSeconds(waypointPid), zt: ztunnelPids.reduce((a, p) => a + cpuSeconds(p), 0) };
      const r = await ferry(env, [
        'exec',
        '--cluster',
        CLUSTER,
        side[s],
        '--',
        process.execPath,
        LOADGEN,
        '--url',
        target[s],
        '--rate',
        String(rate),
        '--duration-ms',
        String(durationMs),
        '--connections',
        String(connections),
        '--warmup-ms',
        String(warmupMs),
        ...(process.env.BENCH_TIMELINE === '1' ? ['--timeline'] : []),
      ]);
      const last = r.stdout.trim().split('\n').pop() ?? '';
      if (r.code !== 0 || !last.startsWith('{')) throw new Error(`loadgen (${s}) failed: ${r.stderr.slice(-1000)}`);
      const result = JSON.parse(last) as Record<string, number>;
      runs[s].push(result);
      if (s === 'mesh') {
        cpuWaypoint += cpuSeconds(waypointPid) - before.wp;
        cpuZtunnels += ztunnelPids.reduce((a, p) => a + cpuSeconds(p), 0) - before.zt;
        meshCompleted += (result.completed ?? 0) + (result.warmup_completed ?? 0);
        loadRss = Math.max(loadRss, rssMb(waypointPid));
      }
      process.stdout.write(`  ${s.padEnd(6)} ${JSON.stringify(result)}\n`);
    }
    const avg = (s: 'mesh' | 'direct', k: string) =>
      runs[s].reduce((a, r) => a + (r[k] ?? Number.NaN), 0) / runs[s].length;
    const summary = {
      bench: 'waypoint',
      rate,
      duration_ms: durationMs,
      connections,
      rounds,
      loadavg_1m: r3(loadavg()[0] ?? 0),
      direct: Object.fromEntries(PCTS.map((p) => [p, r3(avg('direct', p))])),
      mesh: Object.fromEntries(PCTS.map((p) => [p, r3(avg('mesh', p))])),
      added: Object.fromEntries(PCTS.map((p) => [p, r3(avg('mesh', p) - avg('direct', p))])),
      ratio: Object.fromEntries(PCTS.map((p) => [p.replace('_ms', ''), r3(avg('mesh', p) / avg('direct', p))])),
      achieved_rps: { mesh: r3(avg('mesh', 'achieved_rps')), direct: r3(avg('direct', 'achieved_rps')) },
      errors: {
        mesh: runs.mesh.reduce((a, r) => a + (r.errors ?? 0), 0),
        direct: runs.direct.reduce((a, r) => a + (r.errors ?? 0), 0),
      },
      waypoint_cpu_per_1000rps: r3((cpuWaypoint / meshCompleted) * 1000),
      ztunnels_cpu_per_1000rps: r3((cpuZtunnels / meshCompleted) * 1000),
      waypoint_rss_idle_mb: r3(idleRss),
      waypoint_rss_load_mb: r3(loadRss),
    };
    process.stdout.write(
      `\nadded latency (mesh via waypoint − direct): p50 ${summary.added.p50_ms} ms, p90 ${summary.added.p90_ms} ms, p99 ${summary.added.p99_ms} ms\n` +
        `mesh / direct: p50 ×${summary.ratio.p50}, p90 ×${summary.ratio.p90}, p99 ×${summary.ratio.p99}\n` +
        `waypoint CPU ${summary.waypoint_cpu_per_1000rps} vCPU per 1000 rps, RSS ${summary.waypoint_rss_idle_mb} MB idle / ${summary.waypoint_rss_load_mb} MB under load\n`,
    );
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  } finally {
    if (profileDir && waypointPid > 0) {
      await saveMetrics(join(stateRoot, CLUSTER), profileDir);
      await Promise.all([waypointPid, ...ztunnelPidsOf(CLUSTER)].map(stopForProfile));
      await cp(join(stateRoot, CLUSTER, 'logs'), join(profileDir, 'logs'), { recursive: true }).catch(() => undefined);
    }
    const down = await ferry(env, ['down', '--cluster', CLUSTER]);
    if (down.code !== 0) process.stderr.write(`bench waypoint: ferry down failed: ${down.stderr}\n`);
    await rm(stateRoot, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
}

/** The /metrics text of both ztunnels and the waypoint (GC pauses, event-loop lag), into `dir`. */
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
