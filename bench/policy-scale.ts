// `npm run bench -- policy-scale`: what 5,000 AuthorizationPolicies cost (docs/performance.md, "Policy
// scale"). Three parts, each with 0 and BENCH_POLICIES policies:
// 1. the authorization decision alone, in process: p50/p99 of evaluateAuthz over MeshView.policiesFor,
//    indexed (what the ztunnel runs) and linear (every applicable policy matched, the reference);
// 2. a full new connection through two ztunnels on loopback (SOCKS5 → HBONE → authz → echo), each a new
//    CONNECT and a new decision at the destination (bench/conn-churn.ts), static config with the policies;
// 3. the local controller (`ferry controller`, one xDS-connected ztunnel): heap and RSS before, after
//    `ferry apply` of the policies and after `ferry delete`, as is, after 10 s idle, and after one full
//    memory-reducing GC (requested over the inspector), so retained objects are told apart from reserved
//    memory. The policies all apply to the destination (namespace-wide in its namespace): the worst case.
// The last line printed is one JSON object.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FerryProcess, spawnFerry } from '../src/cli/child-process.ts';
import { spiffeId } from '../src/identity/spiffe-id.ts';
import { writeMeshConfig } from '../src/local-cluster/controller/mesh-files.ts';
import { evaluateAuthz, evaluateAuthzLinear } from '../src/mesh/authz/evaluate.ts';
import { EMPTY_MATCH } from '../src/mesh/authz/match.ts';
import type { AuthzConnection } from '../src/mesh/authz/types.ts';
import { buildMeshView } from '../src/mesh/mesh-view.ts';
import type { Authorization, Workload } from '../src/mesh/types.ts';
import { runJsonChild, startBackend } from './children.ts';
import { InspectorClient, waitForInspectorUrl } from './inspector.ts';
import { rssMb } from './proc.ts';
import { positiveEnv, r3 } from './report.ts';

const CLIENT_IP = '127.0.95.2';
const SERVER_IP = '127.0.95.3';
const NS = 'bench';
const MIB = 1024 * 1024;

export interface PolicyScaleOptions {
  readonly policies: number;
  readonly decisions: number;
  /** New connections per second and seconds per side, for part 2. */
  readonly churnRate: number;
  readonly churnMs: number;
  /** Idle wait before the "after idle" reading of part 3. */
  readonly idleMs: number;
}

export function policyScaleOptionsFromEnv(env: NodeJS.ProcessEnv): PolicyScaleOptions {
  return {
    policies: positiveEnv(env, 'BENCH_POLICIES', 5000),
    decisions: positiveEnv(env, 'BENCH_DECISIONS', 20_000),
    churnRate: positiveEnv(env, 'BENCH_CHURN_RATE', 50),
    churnMs: positiveEnv(env, 'BENCH_DURATION_MS', 10_000),
    idleMs: positiveEnv(env, 'BENCH_IDLE_MS', 10_000),
  };
}

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

/**
 * Policy i: DENY (even i) from `other/x-i` on one port, or ALLOW (odd i) from `other/y-i`; the last one
 * ALLOWs the client, so the decision allows after considering every policy (linear worst case).
 */
function policySpec(i: number, n: number): { action: 'Allow' | 'Deny'; principal: string; port: number | null } {
  if (i === n - 1) return { action: 'Allow', principal: `cluster.local/ns/${NS}/sa/client`, port: null };
  return i % 2 === 0
    ? { action: 'Deny', principal: `cluster.local/ns/other/sa/x-${i}`, port: 8000 + (i % 100) }
    : { action: 'Allow', principal: `cluster.local/ns/other/sa/y-${i}`, port: null };
}

function domainPolicies(n: number): Authorization[] {
  return Array.from({ length: n }, (_, i) => {
    const s = policySpec(i, n);
    const from = { ...EMPTY_MATCH, principals: [{ kind: 'exact' as const, value: s.principal }] };
    const to = s.port === null ? [] : [[{ ...EMPTY_MATCH, destinationPorts: [s.port] }]];
    return {
      name: `p-${i}`,
      namespace: NS,
      scope: 'Namespace',
      action: s.action,
      dryRun: false,
      rules: [[[from], ...to]],
    };
  });
}

// ---- part 1: the decision ----

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function decisionCost(n: number, decisions: number) {
  const server: Workload = {
    uid: `Kubernetes//Pod/${NS}/server`,
    name: 'server',
    namespace: NS,
    addresses: [SERVER_IP],
    network: '',
    protocol: 'HBONE',
    trustDomain: 'cluster.local',
    serviceAccount: 'server',
    node: 'b',
    waypoint: null,
    workloadName: 'server',
    workloadType: 'pod',
    canonicalName: 'server',
    canonicalRevision: 'latest',
    clusterId: 'Kubernetes',
    status: 'Healthy',
    capacity: 1,
    authorizationPolicies: [],
    services: new Map(),
  };
  const view = buildMeshView({ workloads: [server], services: [], policies: domainPolicies(n) });
  const conn: AuthzConnection = {
    srcIdentity: spiffeId('cluster.local', NS, 'client'),
    srcIp: CLIENT_IP,
    dstIp: SERVER_IP,
    dstPort: 8080,
  };
  const run = (evaluate: typeof evaluateAuthz) => {
    const times: number[] = [];
    for (let i = 0; i < decisions; i++) {
      const t = performance.now();
      const verdict = evaluate(view.policiesFor(server), conn);
      times.push(performance.now() - t);
      if (verdict.kind !== 'allow') throw new Error(`expected allow with ${n} policies, got ${verdict.code}`);
    }
    times.sort((a, b) => a - b);
    return { p50_us: r3(percentile(times, 50) * 1000), p99_us: r3(percentile(times, 99) * 1000) };
  };
  // Linear first and fewer times when large: it is the slow reference.
  const linear = run((ps, c) => evaluateAuthzLinear(ps, c));
  return { policies: n, indexed: run(evaluateAuthz), linear };
}

// ---- part 2: full connections through two ztunnels ----

function staticMeshYaml(n: number): string {
  const lines = [
    'workloads:',
    `- {uid: "Kubernetes//Pod/${NS}/client", name: client, namespace: ${NS}, serviceAccount: client, workloadIps: ["${CLIENT_IP}"], protocol: HBONE, node: ps-a}`,
    `- {uid: "Kubernetes//Pod/${NS}/server", name: server, namespace: ${NS}, serviceAccount: server, workloadIps: ["${SERVER_IP}"], protocol: HBONE, node: ps-b}`,
    n === 0 ? 'policies: []' : 'policies:',
  ];
  for (let i = 0; i < n; i++) {
    const s = policySpec(i, n);
    const to = s.port === null ? '' : `, [{destinationPorts: [${s.port}]}]`;
    lines.push(
      `- {name: p-${i}, namespace: ${NS}, scope: Namespace, action: ${s.action}, rules: [[[{principals: ["${s.principal}"]}]${to}]]}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function connectCost(o: PolicyScaleOptions, n: number, dir: string) {
  await using stack = new AsyncDisposableStack();
  const echo = stack.use(await startBackend('echo', SERVER_IP, null));
  const configPath = join(dir, `mesh-${n}.yaml`);
  const rootPath = join(dir, `root-${n}.pem`);
  await writeFile(configPath, staticMeshYaml(n));
  const ca = stack.use(spawnFerry('ca', ['ca', '--listen', '127.0.0.1:0', '--root-out', rootPath]));
  const caReady = await ca.waitFor((l) => l.msg === 'CA ready', 'CA ready');
  const ztunnel = (node: string, socks: boolean): FerryProcess =>
    stack.use(
      spawnFerry(`ztunnel ${node}`, [
        'ztunnel',
        ...['--config', configPath, '--node', node, '--ca-address', String(caReady.address), '--ca-root', rootPath],
        ...['--admin', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--readiness', '127.0.0.1:0'],
        ...(socks ? ['--socks5', '127.0.0.1:0'] : []),
      ]),
    );
  const zA = ztunnel('ps-a', true);
  const zB = ztunnel('ps-b', false);
  const readyA = await zA.waitFor((l) => l.msg === 'ztunnel ready', 'ztunnel ready');
  await zB.waitFor((l) => l.msg === 'ztunnel ready', 'ztunnel ready');
  const socks5 = readyA.socks5 as { ip: string; port: number };
  const args = (ms: number) => [
    ...['--target', `${SERVER_IP}:${echo.port}`, '--source', CLIENT_IP, '--socks5', `${socks5.ip}:${socks5.port}`],
    ...['--rate', String(o.churnRate), '--duration-ms', String(ms)],
  ];
  await runJsonChild('conn-churn.ts', args(3000), null); // warm-up: pooled HBONE connection, JIT
  const r = await runJsonChild('conn-churn.ts', args(o.churnMs), null);
  const result: Record<string, number> = { policies: n, rss_mb_b: r3(rssMb(zB.child.pid ?? 0)), ...r };
  return result;
}

// ---- part 3: the controller ----

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function k8sPolicies(n: number): string {
  const docs: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = policySpec(i, n);
    const to = s.port === null ? '' : `\n    to: [{operation: {ports: ["${s.port}"]}}]`;
    docs.push(
      `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p-${i}, namespace: ${NS}}\nspec:\n  action: ${s.action === 'Allow' ? 'ALLOW' : 'DENY'}\n  rules:\n  - from: [{source: {principals: ["${s.principal}"]}}]${to}\n`,
    );
  }
  return docs.join('---\n');
}

interface Reading {
  readonly rss_mb: number;
  readonly heap_used_mb: number;
  readonly heap_total_mb: number;
}

async function controllerMemory(o: PolicyScaleOptions, dir: string) {
  await using stack = new AsyncDisposableStack();
  const cluster = 'pscale';
  const stateRoot = join(dir, 'state');
  const stateDir = join(stateRoot, cluster);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const base = join(dir, 'base.yaml');
  await writeFile(
    base,
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: server, namespace: ${NS}, labels: {app: server}}\nspec: {nodeName: node-0, containers: [{name: c, image: busybox}]}\n`,
  );
  // The runtime's journal: where the local cluster placed the pod (no netns needed: it is not enrolled).
  await writeFile(
    join(stateDir, 'objects.jsonl'),
    `${JSON.stringify({ kind: 'pod', namespace: NS, name: 'server', node: 0, ip: '10.244.0.2', netnsPath: '/nonexistent', cgroupDir: '/nonexistent', labels: {} })}\n`,
  );
  const [xds, caPort, admin] = [await freePort(), await freePort(), await freePort()];
  const token = 'policy-scale-bench-token';
  await writeMeshConfig(stateDir, {
    cluster,
    trustDomain: 'cluster.local',
    manifests: [base],
    controller: { xds: `127.0.0.1:${xds}`, ca: `127.0.0.1:${caPort}`, admin: `127.0.0.1:${admin}` },
    nodes: [{ name: 'node-0', admin: '127.0.0.1:0', metrics: '127.0.0.1:0', readiness: '127.0.0.1:0', token }],
  });
  const policiesFile = join(dir, 'policies.yaml');
  await writeFile(policiesFile, k8sPolicies(o.policies));
  const env = {
    ...process.env,
    FERRY_STATE_DIR: stateRoot,
    NODE_OPTIONS: [process.env.NODE_OPTIONS, '--inspect=127.0.0.1:0'].filter((s) => s !== undefined).join(' '),
  };
  const controller = stack.use(spawnFerry('controller', ['controller', '--cluster', cluster], env));
  await controller.waitFor((l) => l.msg === 'controller ready', 'controller ready');
  const inspector = await InspectorClient.connect(await waitForInspectorUrl(controller.text));
  stack.defer(() => inspector.close());
  const zt = stack.use(
    spawnFerry(
      'ztunnel node-0',
      [
        'ztunnel',
        ...['--node', 'node-0', '--xds-address', `127.0.0.1:${xds}`, '--ca-address', `127.0.0.1:${caPort}`],
        ...['--ca-root', join(stateDir, 'ca', 'root-cert.pem')],
        ...['--admin', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--readiness', '127.0.0.1:0'],
      ],
      { ...process.env, FERRY_CA_TOKEN: token },
    ),
  );
  const pid = controller.child.pid ?? 0;
  const read = async (): Promise<Reading> => {
    const m = await inspector.memoryUsage();
    return { rss_mb: r3(rssMb(pid)), heap_used_mb: r3(m.heapUsed / MIB), heap_total_mb: r3(m.heapTotal / MIB) };
  };
  /** As is, after idling, and after one memory-reducing GC (live heap; the RSS V8 gives back). */
  const measure = async (label: string) => {
    const asIs = await read();
    await new Promise((r) => setTimeout(r, o.idleMs));
    const idle = await read();
    await inspector.collectGarbage();
    const afterGc = await read();
    say(
      `  controller ${label.padEnd(14)} RSS ${asIs.rss_mb.toFixed(0)} → idle ${idle.rss_mb.toFixed(0)} → GC ${afterGc.rss_mb.toFixed(0)} MiB;` +
        ` heap used ${asIs.heap_used_mb.toFixed(1)} → ${idle.heap_used_mb.toFixed(1)} → ${afterGc.heap_used_mb.toFixed(1)} MiB` +
        ` (heap total ${asIs.heap_total_mb.toFixed(0)} → ${idle.heap_total_mb.toFixed(0)} → ${afterGc.heap_total_mb.toFixed(0)})`,
    );
    return { as_is: asIs, after_idle: idle, after_gc: afterGc };
  };
  const cli = async (verb: 'apply' | 'delete'): Promise<number> => {
    const t = performance.now();
    const p = spawnFerry(verb, [verb, '-f', policiesFile, '--cluster', cluster], {
      ...process.env,
      FERRY_STATE_DIR: stateRoot,
    });
    const code = await p.exited;
    if (code !== 0) throw new Error(`ferry ${verb} exited ${code}: ${p.text.join('').slice(-1500)}`);
    return Math.round(performance.now() - t);
  };
  // Before: the controller has published the base state and the ztunnel is connected.
  await new Promise((r) => setTimeout(r, 2000));
  if (zt.child.exitCode !== null) throw new Error(`ztunnel exited: ${zt.text.join('').slice(-1500)}`);
  const before = await measure('before');
  const applyMs = await cli('apply');
  const applied = await measure(`+${o.policies}`);
  const deleteMs = await cli('delete');
  const deleted = await measure('deleted');
  return { apply_ms: applyMs, delete_ms: deleteMs, before, after_apply: applied, after_delete: deleted };
}

export async function runPolicyScale(o: PolicyScaleOptions = policyScaleOptionsFromEnv(process.env)): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-policy-'));
  try {
    say(`1. authorization decision (in process, ${o.decisions} decisions)`);
    const decisions = [0, o.policies].map((n) => decisionCost(n, n === 0 ? o.decisions : Math.min(o.decisions, 2000)));
    for (const d of decisions) {
      say(
        `  ${String(d.policies).padStart(5)} policies: indexed p50 ${d.indexed.p50_us} p99 ${d.indexed.p99_us} µs; linear p50 ${d.linear.p50_us} p99 ${d.linear.p99_us} µs`,
      );
    }
    say(`2. new connections through two ztunnels (${o.churnRate}/s for ${o.churnMs} ms)`);
    const connects = [];
    for (const n of [0, o.policies]) {
      const c = await connectCost(o, n, dir);
      connects.push(c);
      say(
        `  ${String(n).padStart(5)} policies: connect p50 ${c.connect_p50_ms} p90 ${c.connect_p90_ms} p99 ${c.connect_p99_ms} ms (${c.completed}/${c.connections}, ${c.errors} errors)`,
      );
    }
    say(`3. local controller: ferry apply / delete of ${o.policies} policies`);
    const controller = await controllerMemory(o, dir);
    say(
      JSON.stringify({
        bench: 'policy-scale',
        policies: o.policies,
        decision: decisions,
        connect: connects,
        added_connect_p50_ms: r3((connects[1]?.connect_p50_ms ?? 0) - (connects[0]?.connect_p50_ms ?? 0)),
        added_connect_p99_ms: r3((connects[1]?.connect_p99_ms ?? 0) - (connects[0]?.connect_p99_ms ?? 0)),
        controller,
      }),
    );
    return 0;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
