// `npm run bench -- redirect` (root): the BPF redirector benchmark of issue 3, side by side in one run.
// Two simulated nodes (test/helpers/topology.ts: netns + veth on one bridge + cgroup2 per pod), one real
// `ferry ztunnel --redirect bpf` per node. mesh: the client and server pods are enrolled, so the app's
// plain TCP connect is captured by cgroup/connect4 into ztunnel A (in-pod 15001), carried over HBONE mTLS
// to the server pod's in-pod 15008 (ztunnel B) and delivered from 127.0.0.6; direct: the same pods
// unenrolled, plain TCP over the bridge. Load generator inside the client pod, echo server inside the
// server pod, fixed rate 1 KiB request/response, sides alternated ABBA (enroll/unenroll between runs, no
// pod restart). Per-ztunnel CPU from /proc around the mesh runs, RSS; then the time to enroll N pods
// created on one node. Everything (processes, netns, cgroups, pins) is torn down at the end, on error and
// on SIGINT/SIGTERM. The last line printed is one JSON object (docs/performance.md).

import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { sweepTestLeftovers } from '../testkit/netns.ts';
import { privilegeProblem } from '../testkit/privileged.ts';
import { type Pod, Topology } from '../testkit/topology.ts';
import { cpuSeconds, RssSampler, rssMb } from './proc.ts';
import { measureEnrollment } from './redirect-enroll.ts';
import { IPERF_PORT, runIperf, SIDECAR, startHaproxyPair, startIperfServer } from './redirect-haproxy.ts';
import {
  type NodeProxy,
  type RedirectOptions,
  redirectOptionsFromEnv,
  runLoadgenInPod,
  startEchoInPod,
  startNodeProxies,
  writeMeshConfig,
} from './redirect-setup.ts';
import { positiveEnv, proxyCostSummary, r3 } from './report.ts';

const ECHO_PORT = 8080;
const PCTS = ['p50_ms', 'p90_ms', 'p99_ms'] as const;
type Side = 'direct' | 'mesh' | 'haproxy';
const SIDES: readonly Side[] = ['direct', 'mesh', 'haproxy'];
type Run = Record<string, number>;

const mean = (v: readonly number[]): number => v.reduce((a, b) => a + b, 0) / v.length;

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Rounds of one side merged: counts summed, percentiles averaged over rounds. */
function merge(runs: readonly Run[]): Record<string, number> {
  const pick = (k: string): number[] => runs.map((r) => r[k] ?? Number.NaN);
  const sum = (k: string): number => pick(k).reduce((a, b) => a + b, 0);
  return {
    requests: sum('requests'),
    completed: sum('completed'),
    errors: sum('errors'),
    ...Object.fromEntries(PCTS.map((p) => [p, r3(mean(pick(p)))])),
    max_ms: r3(Math.max(...pick('max_ms'))),
  };
}

/**
 * bench/run.ts exits at once on a signal; this bench must first tear down kernel state (netns, cgroups,
 * pins), so it takes SIGINT/SIGTERM over for its run. A second signal exits immediately (the leftovers
 * carry this pid in their names and are swept by the next run or test suite).
 */
function takeOverSignals(): { readonly interrupted: Promise<NodeJS.Signals>; restore(): void } {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const saved = signals.map((s) => [s, process.listeners(s)] as const);
  let resolve: (s: NodeJS.Signals) => void = () => undefined;
  const interrupted = new Promise<NodeJS.Signals>((r) => {
    resolve = r;
  });
  let seen = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (seen) process.exit(130);
    seen = true;
    process.stderr.write(`bench redirect: ${signal}, cleaning up (send it again to exit at once)\n`);
    resolve(signal);
  };
  for (const s of signals) {
    process.removeAllListeners(s);
    process.on(s, handler);
  }
  return {
    interrupted,
    restore() {
      for (const [s, listeners] of saved) {
        process.removeListener(s, handler);
        for (const l of listeners) process.on(s, l);
      }
    },
  };
}

export async function runRedirect(o: RedirectOptions = redirectOptionsFromEnv(process.env)): Promise<number> {
  const problem = privilegeProblem();
  if (problem !== null) {
    process.stderr.write(
      `bench redirect: needs root with BPF, cgroup2, bpffs and iproute2 (try: sudo npm run bench -- redirect)\n` +
        `  cannot run here: ${problem}\n`,
    );
    return 2;
  }
  const signals = takeOverSignals();
  const stack = new AsyncDisposableStack();
  const body = measure(o, stack);
  body.catch(() => undefined); // after an interrupt its failure is expected and not reported
  let interrupted = false;
  try {
    return await Promise.race([
      body,
      signals.interrupted.then(() => {
        interrupted = true;
        return 130;
      }),
    ]);
  } finally {
    process.stderr.write('bench redirect: tearing down (processes, pins, netns, cgroups)\n');
    await stack.disposeAsync();
    signals.restore();
    if (interrupted) process.exit(130);
  }
}

async function measure(o: RedirectOptions, stack: AsyncDisposableStack): Promise<number> {
  const loadStart = loadavg();
  await sweepTestLeftovers(); // only resources of dead processes
  const topo = stack.use(await Topology.create('bench-redirect'));
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-redirect-'));
  stack.defer(() => rm(dir, { recursive: true, force: true }));

  const client = await topo.addPod('client', { node: 'node-a' });
  const server = await topo.addPod('server', { node: 'node-b' });
  const t0 = performance.now();
  const bulk: Pod[] = [];
  for (let i = 0; i < o.enrollPods; i++) bulk.push(await topo.addPod(`bulk${i}`, { node: 'node-a' }));
  say(`created ${bulk.length} pods on node-a in ${(performance.now() - t0).toFixed(0)} ms (netns + veth + cgroup)`);

  const configPath = join(dir, 'mesh.yaml');
  await writeMeshConfig(configPath, client, server, bulk);
  const [za, zb] = (await startNodeProxies(topo, dir, configPath, ['node-a', 'node-b'], stack)) as [
    NodeProxy,
    NodeProxy,
  ];
  await startEchoInPod(server, ECHO_PORT, stack);
  // Reference side (issue 12): an HAProxy mTLS sidecar pair in the same two pods, pods unenrolled.
  const hap = await startHaproxyPair(client, server, ECHO_PORT, dir, stack);
  const hasIperf = await startIperfServer(server, stack);

  // Sides switch by enrolling / unenrolling both pods; each loadgen run opens new connections.
  let current: Side = 'direct';
  const setSide = async (side: Side): Promise<void> => {
    if (side === current) return;
    if (side === 'mesh') await Promise.all([za.enroll(client), zb.enroll(server)]);
    else if (current === 'mesh') await Promise.all([za.unenroll(client), zb.unenroll(server)]);
    current = side;
  };
  const outboundLogs = (): number =>
    za.process.lines.filter((l) => l.msg === 'connection complete' && l.direction === 'outbound').length;
  const load = async (side: Side, conns: number, durationMs: number): Promise<Run> => {
    await setSide(side);
    const before = outboundLogs();
    const target = side === 'haproxy' ? SIDECAR.echo : `${server.ip}:${ECHO_PORT}`;
    const r = await runLoadgenInPod(client, [
      ...['--target', target, '--connections', String(conns)],
      ...['--rate', String(o.rate), '--size', String(o.size), '--duration-ms', String(durationMs)],
    ]);
    // Guard against measuring the wrong path: access logs are written when connections close.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const logged = outboundLogs() - before;
    if (side === 'mesh' ? logged < conns : logged !== 0) {
      throw new Error(`${side} run: ztunnel A logged ${logged} outbound connections for ${conns} (capture broken?)`);
    }
    return r;
  };

  // Single-stream bulk (iperf3, BENCH_BULK_BYTES) on each side, alternated like the latency runs; proxy
  // CPU seconds per GiB moved (both proxies of the side).
  const bulkBytes = positiveEnv(process.env, 'BENCH_BULK_BYTES', 1024 ** 3);
  const measureBulk = async () => {
    const out: Record<Side, { gbps: number[]; cpu_s_per_gib: number[] }> = {
      direct: { gbps: [], cpu_s_per_gib: [] },
      mesh: { gbps: [], cpu_s_per_gib: [] },
      haproxy: { gbps: [], cpu_s_per_gib: [] },
    };
    for (const order of [SIDES, [...SIDES].reverse()]) {
      for (const side of order) {
        await setSide(side);
        const pids = side === 'haproxy' ? [hap.pids.client, hap.pids.server] : [za.pid, zb.pid];
        const before = pids.map(cpuSeconds);
        const gbps =
          side === 'haproxy'
            ? await runIperf(client, '127.0.0.1', Number(SIDECAR.bulk.split(':')[1]), bulkBytes)
            : await runIperf(client, server.ip, IPERF_PORT, bulkBytes);
        const cpuS = pids.map(cpuSeconds).reduce((a, v, i) => a + v - (before[i] ?? 0), 0);
        out[side].gbps.push(gbps);
        out[side].cpu_s_per_gib.push(side === 'direct' ? 0 : cpuS / (bulkBytes / 1024 ** 3));
        say(
          `  bulk ${side.padEnd(7)} ${gbps.toFixed(2)} Gbit/s, proxies ${(cpuS / (bulkBytes / 1024 ** 3)).toFixed(2)} CPU-s/GiB`,
        );
      }
    }
    return Object.fromEntries(
      SIDES.map((s) => [s, { gbps: r3(mean(out[s].gbps)), cpu_s_per_gib: r3(mean(out[s].cpu_s_per_gib)) }]),
    ) as Record<Side, { gbps: number; cpu_s_per_gib: number }>;
  };

  await setSide('mesh');
  await new Promise((resolve) => setTimeout(resolve, 1000)); // startup garbage settles
  const idleRss = { a: rssMb(za.pid), b: rssMb(zb.pid) };
  say(`ztunnels ready (pids ${za.pid}, ${zb.pid}); idle RSS ${idleRss.a.toFixed(1)} / ${idleRss.b.toFixed(1)} MiB`);
  const maxConns = Math.max(...o.connections);
  const idleRssHap = { a: rssMb(hap.pids.client), b: rssMb(hap.pids.server) };
  for (const side of SIDES) await load(side, maxConns, o.warmupMs);

  const rss = new RssSampler([za.pid, zb.pid]);
  const rssHap = new RssSampler([hap.pids.client, hap.pids.server]);
  const cpu = { a: 0, b: 0, completed: 0 };
  const cpuHap = { a: 0, b: 0, completed: 0 };
  const results = new Map<number, Record<Side, Run[]>>();
  let phase = 0;
  for (const conns of o.connections) {
    const perConn: Record<Side, Run[]> = { direct: [], mesh: [], haproxy: [] };
    results.set(conns, perConn);
    for (let round = 0; round < o.rounds; round++) {
      // Alternated: direct, mesh, haproxy then haproxy, mesh, direct, so drift hits every side alike.
      const order: readonly Side[] = phase++ % 2 === 0 ? SIDES : [...SIDES].reverse();
      for (const side of order) {
        await setSide(side); // before the CPU reading: enrollment is not request cost
        const [pa, pb, acc, sampler] =
          side === 'haproxy' ? [hap.pids.client, hap.pids.server, cpuHap, rssHap] : [za.pid, zb.pid, cpu, rss];
        const before = { a: cpuSeconds(pa), b: cpuSeconds(pb) };
        if (side !== 'direct') sampler.start();
        const r = await load(side, conns, o.durationMs);
        if (side !== 'direct') {
          sampler.stop();
          acc.a += cpuSeconds(pa) - before.a;
          acc.b += cpuSeconds(pb) - before.b;
          acc.completed += r.completed ?? 0;
        }
        perConn[side].push(r);
        say(
          `  ${String(conns).padStart(3)} conns ${side.padEnd(6)} p50 ${r.p50_ms?.toFixed(3)} p90 ${r.p90_ms?.toFixed(3)} ` +
            `p99 ${r.p99_ms?.toFixed(3)} ms  (${r.completed}/${r.requests}, ${r.errors} errors)`,
        );
      }
    }
  }
  const bulk1 = hasIperf ? await measureBulk() : null;
  await setSide('direct');

  say(`enrolling ${bulk.length} pods into ztunnel node-a:`);
  let rssEnrolled = Number.NaN;
  const enrollment = await measureEnrollment(za, bulk, o.enrollConcurrency, say, () => {
    rssEnrolled = rssMb(za.pid);
  });

  const perConnections = [...results].map(([conns, r]) => {
    const direct = merge(r.direct);
    const mesh = merge(r.mesh);
    const haproxy = merge(r.haproxy);
    const added = (p: (typeof PCTS)[number]): number => r3((mesh[p] ?? 0) - (direct[p] ?? 0));
    return {
      connections: conns,
      direct,
      mesh,
      haproxy,
      added_p50_ms: added('p50_ms'),
      added_p90_ms: added('p90_ms'),
      added_p99_ms: added('p99_ms'),
      // Ferry ÷ HAProxy pair, same run: < 1 means Ferry is faster.
      ratio_vs_haproxy: Object.fromEntries(
        PCTS.map((p) => [p.replace('_ms', ''), r3((mesh[p] ?? 0) / (haproxy[p] ?? Number.NaN))]),
      ),
    };
  });
  const worst = (k: `added_${(typeof PCTS)[number]}`): number => Math.max(...perConnections.map((c) => c[k]));
  const cold = enrollment[0];
  const ferryCost = proxyCostSummary({ cpu, idleRss, rss, pids: { a: za.pid, b: zb.pid } });
  const hapCost = proxyCostSummary({
    cpu: cpuHap,
    idleRss: idleRssHap,
    rss: rssHap,
    pids: { a: hap.pids.client, b: hap.pids.server },
  });
  const summary = {
    bench: 'redirect',
    // Top-level added latencies are the worst over the connection counts.
    added_p50_ms: worst('added_p50_ms'),
    added_p90_ms: worst('added_p90_ms'),
    added_p99_ms: worst('added_p99_ms'),
    ...ferryCost,
    haproxy: {
      cpu_per_1000rps: hapCost.cpu_per_1000rps,
      cpu_per_1000rps_client: hapCost.cpu_per_1000rps_ztunnel_a,
      cpu_per_1000rps_server: hapCost.cpu_per_1000rps_ztunnel_b,
      rss_idle_mb: hapCost.rss_mb,
      rss_load_mb: hapCost.rss_load_mb,
    },
    ratio_vs_haproxy: {
      cpu_per_1000rps: r3(ferryCost.cpu_per_1000rps / hapCost.cpu_per_1000rps),
      rss_load_mb: r3(ferryCost.rss_load_mb / hapCost.rss_load_mb),
      ...(bulk1 === null ? {} : { bulk_gbps: r3(bulk1.mesh.gbps / bulk1.haproxy.gbps) }),
    },
    bulk: bulk1,
    rss_with_enrolled_pods_mb: r3(rssEnrolled),
    // Headline: the first pass (sequential, each pod's first enrollment), the slowest.
    enroll_100_pods_ms: cold === undefined ? Number.NaN : r3((cold.enroll_ms * 100) / bulk.length),
    enroll_pods: bulk.length,
    enrollment,
    targets: { added_p99_ms: 0.6, enroll_100_pods_ms: 2000 },
    rate: o.rate,
    size: o.size,
    duration_ms: o.durationMs,
    rounds: o.rounds,
    loadavg_start: loadStart.map(r3),
    loadavg_end: loadavg().map(r3),
    per_connections: perConnections,
  };
  say(JSON.stringify(summary));
  return 0;
}
