// Pieces of the redirect benchmark (bench/redirect.ts): its options, the mesh config for the simulated
// pods, one real `ferry ztunnel --redirect bpf` process per simulated node (plus a `ferry ca`), the admin
// API calls that enroll and unenroll pods, and the benchmark processes run INSIDE pods (echo server,
// load generator) through the topology helper, so their sockets live in the pod netns and cgroup.

import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type FerryProcess, spawnFerry } from '../src/cli/child-process.ts';
import { uninstallPins } from '../src/redirect-bpf/loader.ts';
import { adminSocketRequest } from '../src/runtime/admin-socket.ts';
import { ztunnelNodeOptions } from '../src/ztunnel/heap-limits.ts';
import type { Pod, Topology } from '../testkit/topology.ts';
import { benchScript } from './children.ts';
import { connectionCounts, positiveEnv } from './report.ts';

export interface RedirectOptions {
  readonly durationMs: number;
  readonly rate: number;
  readonly size: number;
  readonly connections: readonly number[];
  readonly rounds: number;
  readonly warmupMs: number;
  /** Pods created on one node and enrolled in bulk (the enrollment-time measurement). */
  readonly enrollPods: number;
  /** Parallel admin requests in the concurrent enrollment run. */
  readonly enrollConcurrency: number;
}

export function redirectOptionsFromEnv(env: NodeJS.ProcessEnv): RedirectOptions {
  const connections = connectionCounts(env);
  return {
    durationMs: positiveEnv(env, 'BENCH_DURATION_MS', 10_000),
    rate: positiveEnv(env, 'BENCH_RATE', 1000),
    size: positiveEnv(env, 'BENCH_SIZE', 1024),
    connections,
    rounds: positiveEnv(env, 'BENCH_ROUNDS', 2),
    warmupMs: positiveEnv(env, 'BENCH_WARMUP_MS', 3000),
    enrollPods: positiveEnv(env, 'BENCH_ENROLL_PODS', 100),
    enrollConcurrency: positiveEnv(env, 'BENCH_ENROLL_CONCURRENCY', 8),
  };
}

export const NAMESPACE = 'bench';
export const podUid = (pod: Pod): string => `Kubernetes//Pod/${NAMESPACE}/${pod.name}`;

/** client on node-a, server on node-b, and the bulk pods on node-a, each bulk pod with its own identity. */
export function meshYaml(client: Pod, server: Pod, bulk: readonly Pod[]): string {
  const w = (pod: Pod, sa: string, node: string): string => `
- uid: ${podUid(pod)}
  name: ${pod.name}
  namespace: ${NAMESPACE}
  serviceAccount: ${sa}
  workloadIps: ["${pod.ip}"]
  protocol: HBONE
  node: ${node}`;
  return `workloads:${w(client, 'client', 'node-a')}${w(server, 'server', 'node-b')}${bulk
    .map((p) => w(p, p.name, 'node-a'))
    .join('')}\n`;
}

export interface NodeProxy {
  readonly node: string;
  readonly pid: number;
  readonly process: FerryProcess;
  enroll(pod: Pod): Promise<void>;
  unenroll(pod: Pod): Promise<void>;
}

/** Enrollment goes over the ztunnel's 0600 admin socket (its TCP admin port serves reads only). */
async function admin(socket: string, method: string, path: string, body?: unknown): Promise<void> {
  const res = await adminSocketRequest(socket, method, path, { body });
  if (res.status !== 200) throw new Error(`${method} ${path}: HTTP ${res.status} ${res.text.trim()}`);
}

/**
 * A `ferry ca` and one `ferry ztunnel --redirect bpf` per node, each attached to its node's cgroup subtree
 * with its own pin root. Everything is deferred onto `stack`: pins are removed after the processes exit.
 */
export async function startNodeProxies(
  topo: Topology,
  dir: string,
  configPath: string,
  nodes: readonly string[],
  stack: AsyncDisposableStack,
): Promise<NodeProxy[]> {
  const rootPath = join(dir, 'root-cert.pem');
  const ca = stack.use(spawnFerry('ca', ['ca', '--listen', '127.0.0.1:0', '--root-out', rootPath]));
  const caReady = await ca.waitFor((l) => l.msg === 'CA ready', 'CA ready');
  const proxies: NodeProxy[] = [];
  // As the local cluster starts them: the heap limits, then BENCH_ZTUNNEL_NODE_OPTIONS (e.g. --cpu-prof).
  const ztunnelEnv = { ...process.env, NODE_OPTIONS: ztunnelNodeOptions(process.env.BENCH_ZTUNNEL_NODE_OPTIONS) };
  for (const node of nodes) {
    const pinRoot = `${topo.pinRoot}-${node}`;
    stack.defer(() => uninstallPins(pinRoot)); // LIFO: after the ztunnel below has exited
    const zt = stack.use(
      spawnFerry(
        `ztunnel ${node}`,
        [
          'ztunnel',
          ...['--config', configPath, '--node', node, '--ca-address', String(caReady.address), '--ca-root', rootPath],
          ...['--admin', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--readiness', '127.0.0.1:0'],
          ...['--admin-socket', join(dir, `${node}-admin.sock`)],
          ...['--redirect', 'bpf', '--cgroup-root', topo.nodeCgroup(node), '--pin-root', pinRoot],
          ...['--redirect-state', join(dir, `${node}-pods.json`), '--drain-deadline-ms', '1000'],
        ],
        ztunnelEnv,
      ),
    );
    await zt.waitFor((l) => l.msg === 'ztunnel ready', 'ztunnel ready');
    const socket = join(dir, `${node}-admin.sock`);
    proxies.push({
      node,
      pid: zt.child.pid ?? 0,
      process: zt,
      enroll: (pod) =>
        admin(socket, 'POST', '/pods', { uid: podUid(pod), netnsPath: pod.netnsPath, cgroupPath: pod.cgroupPath }),
      unenroll: (pod) => admin(socket, 'DELETE', `/pods/${encodeURIComponent(podUid(pod))}`),
    });
  }
  return proxies;
}

/** The echo backend (bench/servers.ts) listening on 0.0.0.0:<port> inside the pod. */
export async function startEchoInPod(pod: Pod, port: number, stack: AsyncDisposableStack): Promise<void> {
  const child = pod.spawn(process.execPath, [benchScript('servers.ts'), 'echo', '0.0.0.0', String(port)]);
  child.stdin.end();
  const exited = once(child, 'exit');
  stack.defer(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('listening')) resolve();
    });
    void exited.then(([code]) => reject(new Error(`echo server in ${pod.name} exited (${code}): ${err.slice(-1000)}`)));
  });
}

/** Runs bench/loadgen.ts inside the pod to completion and returns its JSON answer. */
export async function runLoadgenInPod(pod: Pod, args: readonly string[]): Promise<Record<string, number>> {
  const result = await pod.run(process.execPath, [benchScript('loadgen.ts'), ...args]);
  const last = result.stdout.trim().split('\n').pop() ?? '';
  if (result.code !== 0 || !last.startsWith('{')) {
    throw new Error(
      `loadgen in ${pod.name} ${args.join(' ')} failed (exit ${result.code}): ${result.stderr.slice(-1500)}`,
    );
  }
  return JSON.parse(last) as Record<string, number>;
}

export async function writeMeshConfig(path: string, client: Pod, server: Pod, bulk: readonly Pod[]): Promise<void> {
  await writeFile(path, meshYaml(client, server, bulk));
}
