// `npm run bench -- sidecar` (root): sidecar pair vs ztunnel pair, same pods, same run (issue 15 §1; the
// comparison the research on sidecarless meshes is about). Two simulated nodes (testkit/topology.ts), one
// `ferry ztunnel --redirect bpf` per node, and one `ferry ztunnel --sidecar` per pod (client on node-a,
// server on node-b). Three sides, switched by enrolling/unenrolling over the admin sockets, no restart:
// direct (plain TCP pod to pod), ztunnel (both pods in their node ztunnels) and sidecar (both pods in their
// own sidecars). The load generator runs in the client pod's `app` container cgroup (what a sidecar
// captures; the node ztunnel captures it through the pod cgroup), fixed rate 1 KiB request/response, sides
// alternated to cancel drift; proxy CPU per side from /proc, RSS idle and under load. Everything is torn
// down at the end and on error. The last line printed is one JSON object (docs/performance.md).
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FerryProcess, spawnFerry } from '../src/cli/child-process.ts';
import { uninstallPins } from '../src/redirect-bpf/loader.ts';
import { adminSocketRequest } from '../src/runtime/admin-socket.ts';
import { sweepTestLeftovers } from '../testkit/netns.ts';
import { privilegeProblem } from '../testkit/privileged.ts';
import { type Pod, Topology } from '../testkit/topology.ts';
import { benchScript } from './children.ts';
import { cpuSeconds, RssSampler, rssMb } from './proc.ts';
import {
  type NodeProxy,
  podUid,
  type RedirectOptions,
  redirectOptionsFromEnv,
  startEchoInPod,
  startNodeProxies,
  writeMeshConfig,
} from './redirect-setup.ts';
import { proxyCostSummary, r3 } from './report.ts';

const ECHO_PORT = 8080;
const APP = 'app';
const PCTS = ['p50_ms', 'p90_ms', 'p99_ms'] as const;
type Side = 'direct' | 'ztunnel' | 'sidecar';
const SIDES: readonly Side[] = ['direct', 'ztunnel', 'sidecar'];
type Run = Record<string, number>;

const mean = (v: readonly number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
const say = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

/** A pod's sidecar process and its (un)enrollment over its admin socket. */
interface SidecarProxy {
  readonly pid: number;
  readonly process: FerryProcess;
  enroll(): Promise<void>;
  unenroll(): Promise<void>;
}

async function admin(socket: string, method: string, path: string, body?: unknown): Promise<void> {
  const res = await adminSocketRequest(socket, method, path, { body });
  if (res.status !== 200) throw new Error(`${method} ${path}: HTTP ${res.status} ${res.text.trim()}`);
}

/** One `ferry ca` for the sidecars and a `ferry ztunnel --sidecar` per pod, left unenrolled (side direct). */
async function startSidecars(
  topo: Topology,
  dir: string,
  configPath: string,
  pods: readonly { pod: Pod; node: string }[],
  stack: AsyncDisposableStack,
): Promise<SidecarProxy[]> {
  const rootPath = join(dir, 'sidecar-root-cert.pem');
  const ca = stack.use(spawnFerry('sidecar ca', ['ca', '--listen', '127.0.0.1:0', '--root-out', rootPath]));
  const caReady = await ca.waitFor((l) => l.msg === 'CA ready', 'CA ready');
  const out: SidecarProxy[] = [];
  for (const { pod, node } of pods) {
    const app = join(pod.cgroupPath, APP);
    mkdirSync(app, { recursive: true }); // removed with the pod's cgroup tree
    const pinRoot = `${topo.pinRoot}-sidecar-${pod.name}`;
    stack.defer(() => uninstallPins(pinRoot)); // LIFO: after the sidecar below has exited
    const socket = join(dir, `sidecar-${pod.name}.sock`);
    const proc = stack.use(
      spawnFerry(`sidecar ${pod.name}`, [
        'ztunnel',
        ...['--sidecar', podUid(pod), '--netns', pod.netnsPath, '--cgroup-root', pod.cgroupPath],
        ...['--app-cgroup', app, '--pin-root', pinRoot],
        ...['--config', configPath, '--node', node, '--ca-address', String(caReady.address), '--ca-root', rootPath],
        ...['--admin', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--readiness', '127.0.0.1:0'],
        ...['--admin-socket', socket, '--drain-deadline-ms', '1000'],
      ]),
    );
    await proc.waitFor((l) => l.msg === 'ztunnel ready', `sidecar ${pod.name} ready`);
    const uid = encodeURIComponent(podUid(pod));
    const proxy: SidecarProxy = {
      pid: proc.child.pid ?? 0,
      process: proc,
      enroll: () =>
        admin(socket, 'POST', '/pods', { uid: podUid(pod), netnsPath: pod.netnsPath, cgroupPath: pod.cgroupPath }),
      unenroll: () => admin(socket, 'DELETE', `/pods/${uid}`),
    };
    await proxy.unenroll(); // it enrolls its pod at start; the run starts on the direct side
    out.push(proxy);
  }
  return out;
}

function merge(runs: readonly Run[]): Run {
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

export async function runSidecarBench(o: RedirectOptions = redirectOptionsFromEnv(process.env)): Promise<number> {
  const problem = privilegeProblem();
  if (problem !== null) {
    process.stderr.write(
      `bench sidecar: needs root with BPF, cgroup2, bpffs and iproute2\n  cannot run here: ${problem}\n`,
    );
    return 2;
  }
  await using stack = new AsyncDisposableStack();
  await sweepTestLeftovers(); // only resources of dead processes
  const topo = stack.use(await Topology.create('bench-sidecar'));
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-sidecar-'));
  stack.defer(() => rm(dir, { recursive: true, force: true }));
  const client = await topo.addPod('client', { node: 'node-a' });
  const server = await topo.addPod('server', { node: 'node-b' });
  const configPath = join(dir, 'mesh.yaml');
  await writeMeshConfig(configPath, client, server, []);
  const [za, zb] = (await startNodeProxies(topo, dir, configPath, ['node-a', 'node-b'], stack)) as [
    NodeProxy,
    NodeProxy,
  ];
  const [sa, sb] = (await startSidecars(
    topo,
    dir,
    configPath,
    [
      { pod: client, node: 'node-a' },
      { pod: server, node: 'node-b' },
    ],
    stack,
  )) as [SidecarProxy, SidecarProxy];
  await startEchoInPod(server, ECHO_PORT, stack);

  let current: Side = 'direct';
  const setSide = async (side: Side): Promise<void> => {
    if (side === current) return;
    // Never both at once: each would attach its own sk_lookup to the same pod netns.
    if (current === 'ztunnel') await Promise.all([za.unenroll(client), zb.unenroll(server)]);
    if (current === 'sidecar') await Promise.all([sa.unenroll(), sb.unenroll()]);
    if (side === 'ztunnel') await Promise.all([za.enroll(client), zb.enroll(server)]);
    if (side === 'sidecar') await Promise.all([sa.enroll(), sb.enroll()]);
    current = side;
  };
  const outbound = (p: FerryProcess): number =>
    p.lines.filter((l) => l.msg === 'connection complete' && l.direction === 'outbound').length;
  const load = async (side: Side, conns: number, durationMs: number): Promise<Run> => {
    await setSide(side);
    const before = { z: outbound(za.process), s: outbound(sa.process) };
    const result = await client.run(
      process.execPath,
      [
        benchScript('loadgen.ts'),
        ...['--target', `${server.ip}:${ECHO_PORT}`, '--connections', String(conns)],
        ...['--rate', String(o.rate), '--size', String(o.size), '--duration-ms', String(durationMs)],
      ],
      { container: APP },
    );
    const last = result.stdout.trim().split('\n').pop() ?? '';
    if (result.code !== 0 || !last.startsWith('{')) throw new Error(`loadgen failed: ${result.stderr.slice(-1500)}`);
    // Guard against measuring the wrong path: access logs are written when connections close.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const logged = { z: outbound(za.process) - before.z, s: outbound(sa.process) - before.s };
    const expected = { z: side === 'ztunnel' ? conns : 0, s: side === 'sidecar' ? conns : 0 };
    if (
      logged.z < expected.z ||
      logged.s < expected.s ||
      (expected.z === 0 && logged.z > 0) ||
      (expected.s === 0 && logged.s > 0)
    ) {
      throw new Error(`${side} run: outbound connections logged ztunnel ${logged.z}, sidecar ${logged.s} for ${conns}`);
    }
    return JSON.parse(last) as Run;
  };

  await new Promise((resolve) => setTimeout(resolve, 1000)); // startup garbage settles
  const pids = { ztunnel: [za.pid, zb.pid] as const, sidecar: [sa.pid, sb.pid] as const };
  const idle = {
    ztunnel: { a: rssMb(za.pid), b: rssMb(zb.pid) },
    sidecar: { a: rssMb(sa.pid), b: rssMb(sb.pid) },
  };
  const maxConns = Math.max(...o.connections);
  for (const side of SIDES) await load(side, maxConns, o.warmupMs);

  const rss = { ztunnel: new RssSampler([za.pid, zb.pid]), sidecar: new RssSampler([sa.pid, sb.pid]) };
  const cpu = { ztunnel: { a: 0, b: 0, completed: 0 }, sidecar: { a: 0, b: 0, completed: 0 } };
  const results = new Map<number, Record<Side, Run[]>>();
  let phase = 0;
  for (const conns of o.connections) {
    const perConn: Record<Side, Run[]> = { direct: [], ztunnel: [], sidecar: [] };
    results.set(conns, perConn);
    for (let round = 0; round < o.rounds; round++) {
      const order: readonly Side[] = phase++ % 2 === 0 ? SIDES : [...SIDES].reverse();
      for (const side of order) {
        await setSide(side); // before the CPU reading: enrollment is not request cost
        const proxy = side === 'direct' ? null : side;
        const before = proxy === null ? null : pids[proxy].map(cpuSeconds);
        if (proxy !== null) rss[proxy].start();
        const r = await load(side, conns, o.durationMs);
        if (proxy !== null && before !== null) {
          rss[proxy].stop();
          const [a, b] = pids[proxy].map((p, i) => cpuSeconds(p) - (before[i] ?? 0));
          cpu[proxy].a += a ?? 0;
          cpu[proxy].b += b ?? 0;
          cpu[proxy].completed += r.completed ?? 0;
        }
        perConn[side].push(r);
        say(
          `  ${String(conns).padStart(3)} conns ${side.padEnd(7)} p50 ${r.p50_ms?.toFixed(3)} p90 ${r.p90_ms?.toFixed(3)} ` +
            `p99 ${r.p99_ms?.toFixed(3)} ms  (${r.completed}/${r.requests}, ${r.errors} errors)`,
        );
      }
    }
  }
  await setSide('direct');

  const perConnections = [...results].map(([conns, r]) => {
    const direct = merge(r.direct);
    const ztunnel = merge(r.ztunnel);
    const sidecar = merge(r.sidecar);
    const added = (side: Run) => Object.fromEntries(PCTS.map((p) => [p, r3((side[p] ?? 0) - (direct[p] ?? 0))]));
    return {
      connections: conns,
      direct,
      ztunnel,
      sidecar,
      added_ztunnel: added(ztunnel),
      added_sidecar: added(sidecar),
    };
  });
  const cost = (side: 'ztunnel' | 'sidecar') => {
    const [a, b] = pids[side];
    const c = proxyCostSummary({ cpu: cpu[side], idleRss: idle[side], rss: rss[side], pids: { a, b } });
    return { cpu_per_1000rps: c.cpu_per_1000rps, rss_idle_mb: c.rss_mb, rss_load_mb: c.rss_load_mb };
  };
  const summary = {
    bench: 'sidecar',
    ztunnel: cost('ztunnel'),
    sidecar: cost('sidecar'),
    rate: o.rate,
    size: o.size,
    duration_ms: o.durationMs,
    rounds: o.rounds,
    per_connections: perConnections,
  };
  say(JSON.stringify(summary));
  return 0;
}
