// Helpers for the in-pod ztunnel tests: a shared Istio-layout CA dir (openssl), one ztunnel process per
// simulated node (fixtures/ztunnel-node.ts) with its logs captured and its admin/metrics addresses, an app
// server inside a pod that greets with a JSON line carrying a payload marker, and a tcpdump capture on the
// topology's bridge. Every process and file is deferred onto the caller's stack.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { closeFd, createListenerFd, inNetns, openNetns } from '../../src/redirect-bpf/netns.ts';
import { adminSocketRequest } from '../../src/runtime/admin-socket.ts';
import { run } from '../../testkit/netns.ts';
import type { Pod, Topology } from '../../testkit/topology.ts';
import { type ParsedMetrics, parseMetrics } from './parse-metrics.ts';
import { captureLogs, type LogCapture } from './ztunnel-harness.ts';

export async function tempDir(stack: AsyncDisposableStack, name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `ferrytest-${process.pid}-${name}-`));
  stack.defer(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A self-signed P-256 root in Istio's cacerts layout (ca-cert = root), shared by all node ztunnels. */
export async function writeCaDir(dir: string): Promise<void> {
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    join(dir, 'ca-key.pem'),
    '-out',
    join(dir, 'ca-cert.pem'),
    '-days',
    '2',
    '-subj',
    '/O=cluster.local/CN=ferry test root',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const cert = await readFile(join(dir, 'ca-cert.pem'), 'utf8');
  await writeFile(join(dir, 'root-cert.pem'), cert);
  await writeFile(join(dir, 'cert-chain.pem'), cert);
}

const NODE_MAIN = new URL('../namespaced/fixtures/ztunnel-node.ts', import.meta.url).pathname;

export interface NodeZtunnelOptions {
  readonly node: string;
  readonly configPath: string;
  readonly cgroupRoot: string;
  readonly pinRoot: string;
  readonly statePath: string;
  readonly caDir: string;
  /** Enroll from this Kubernetes API (the node agent) instead of the admin socket. */
  readonly kubeconfigPath?: string;
  /**
   * Run as a DaemonSet's ztunnel container would (host netns kept): in this cgroup (a container cgroup
   * under the node's pod root) and a private cgroup namespace, so /proc/self/cgroup hides its path; with
   * `podUid`, passed as --pod-uid.
   */
  readonly placement?: { readonly cgroupPath: string; readonly podUid?: string };
}

export interface NodeZtunnel {
  readonly logs: LogCapture;
  /** Reads only: changes over TCP get 403. */
  readonly adminUrl: string;
  /** The 0600 admin socket: enrollment goes here. */
  readonly adminSocket: string;
  readonly metricsUrl: string;
  readonly child: ChildProcess;
  /** SIGTERM (graceful drain) and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL (a crash: no drain) and wait for the exit. */
  kill(): Promise<void>;
  /** SIGHUP (re-read the config file). */
  reload(): void;
  metrics(): Promise<ParsedMetrics>;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
}

/** Starts the node's ztunnel process and resolves once it logged 'ztunnel ready'. Killed with `stack`. */
export async function startNodeZtunnel(opts: NodeZtunnelOptions, stack: AsyncDisposableStack): Promise<NodeZtunnel> {
  const main = [
    process.execPath,
    NODE_MAIN,
    opts.configPath,
    opts.node,
    opts.cgroupRoot,
    opts.pinRoot,
    opts.statePath,
    opts.caDir,
    ...(opts.kubeconfigPath === undefined ? [] : [opts.kubeconfigPath]),
  ];
  const placement = opts.placement;
  // Join the cgroup, then unshare the cgroup namespace (its root is then that cgroup): as in a container.
  const [cmd, ...args] =
    placement === undefined
      ? main
      : [
          'sh',
          '-c',
          'echo $$ > "$1" || exit 97; shift; exec unshare --cgroup "$@"',
          'sh',
          join(placement.cgroupPath, 'cgroup.procs'),
          ...main,
        ];
  const child = spawn(cmd ?? process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: placement?.podUid === undefined ? process.env : { ...process.env, FERRY_TEST_POD_UID: placement.podUid },
  });
  const exited = once(child, 'exit');
  stack.defer(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const logs = captureLogs();
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    if (line.startsWith('{')) logs.write(line);
  });
  const gaveUp = new AbortController();
  const ready = await Promise.race([
    logs.waitFor((l) => l.msg === 'ztunnel ready', gaveUp.signal),
    exited.then(() => {
      throw new Error(`ztunnel ${opts.node} exited before ready: ${stderr}`);
    }),
  ]).finally(() => gaveUp.abort(new Error('done')));
  const admin = ready.admin as { host: string; port: number };
  const metricsAddr = ready.metrics as { host: string; port: number };
  const adminUrl = `http://${admin.host}:${admin.port}`;
  const adminSocket = `${opts.statePath}.admin.sock`; // see fixtures/ztunnel-node.ts
  const metricsUrl = `http://${metricsAddr.host}:${metricsAddr.port}/metrics`;
  return {
    logs,
    adminUrl,
    metricsUrl,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    reload() {
      child.kill('SIGHUP');
    },
    async metrics() {
      const res = await fetch(metricsUrl);
      return parseMetrics(await res.text());
    },
    adminSocket,
    async admin(method, path, body) {
      const res = await adminSocketRequest(adminSocket, method, path, { body });
      const text = res.text;
      let json: unknown = text;
      try {
        json = JSON.parse(text);
      } catch {
        // plain text reply
      }
      return { status: res.status, json };
    },
  };
}

export interface Greeting {
  readonly via: 'app';
  readonly pod: string;
  readonly remote: string;
  readonly marker: string;
}

/**
 * An app listening on 0.0.0.0:<port> inside the pod (socket made in its netns, served by this process):
 * greets each connection with a JSON line {via, pod, remote, marker}, ends on the line `hello` (what the
 * one-shot client sends), echoes any other line (sessions).
 */
export async function serveGreetingApp(
  pod: Pod,
  port: number,
  marker: string,
  stack: AsyncDisposableStack,
): Promise<Server> {
  const netnsFd = openNetns(pod.netnsPath);
  let fd: number;
  try {
    fd = inNetns(netnsFd, () => createListenerFd({ address: '0.0.0.0', port }));
  } finally {
    closeFd(netnsFd);
  }
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const greeting: Greeting = { via: 'app', pod: pod.name, remote: String(socket.remoteAddress), marker };
    socket.write(`${JSON.stringify(greeting)}\n`);
    createInterface({ input: socket })
      .on('line', (line) => {
        if (line === 'hello') socket.end();
        else socket.write(`${line}\n`);
      })
      // readline re-emits its input's errors: a client that resets must not crash the test process.
      .on('error', () => undefined);
  });
  server.listen({ fd });
  await once(server, 'listening');
  stack.defer(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return server;
}

/**
 * tcpdump on every link of the bridge netns (`-i any`: forwarded frames between bridge ports never show on
 * br0 itself); stop() ends it and returns the raw pcap bytes plus a text listing for a filter.
 */
export async function captureBridge(
  topo: Pick<Topology, 'bridgeNetnsPath'>,
  dir: string,
  name: string,
): Promise<{
  peek(): Promise<Buffer>;
  stop(until?: (pcap: Buffer) => boolean): Promise<{ pcap: Buffer; list(filter: string): Promise<string> }>;
}> {
  const file = join(dir, `${name}.pcap`);
  const child = spawn(
    'nsenter',
    [
      `--net=${topo.bridgeNetnsPath}`,
      'tcpdump',
      '--immediate-mode',
      '-Z',
      'root',
      '-i',
      'any',
      '-s',
      '0',
      '-U',
      '-w',
      file,
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const exited = once(child, 'exit');
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
      if (stderr.includes('listening on')) resolve();
    });
    void exited.then(() => reject(new Error(`tcpdump exited: ${stderr}`)));
  });
  return {
    /** What tcpdump has written so far (the capture keeps running). */
    peek: () => readFile(file).catch(() => Buffer.alloc(0)),
    /**
     * Stops the capture once tcpdump has written what it saw: packets reach the app before tcpdump reads
     * its copy, and SIGINT drops what it has not read yet. Waits (bounded) until `until(pcap)` holds, or,
     * without a predicate, until the file stops growing.
     */
    async stop(until?: (pcap: Buffer) => boolean) {
      let last = -1;
      for (let i = 0; i < 100; i++) {
        const pcap = await readFile(file).catch(() => Buffer.alloc(0));
        if (until === undefined ? pcap.length === last : until(pcap)) break;
        last = pcap.length;
        await new Promise((r) => setTimeout(r, 30));
      }
      child.kill('SIGINT');
      await exited;
      const pcap = await readFile(file);
      return {
        pcap,
        list: (filter: string) => run('tcpdump', ['-nn', '-r', file, filter]),
      };
    },
  };
}
