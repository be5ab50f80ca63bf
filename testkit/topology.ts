// Simulated node topology for namespaced tests: one L2 segment (a bridge living in its own netns, so
// nothing is added to the host netns), pods = netns + veth on that bridge + a cgroup2 dir under the
// topology's cgroup subtree (where the redirector attaches). Names are `ferrytest-<pid>-<name>…` so the
// suite-start sweep removes leftovers of dead runs. Teardown is LIFO, also when the test failed.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BPFFS_ROOT, cgroup2Root, NETNS_DIR, removeCgroupTree, run, TEST_PREFIX } from './netns.ts';

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface AddPodOptions {
  /** Simulated node: the pod's cgroup goes under `<cgroupRoot>/<node>/` (that node's redirector subtree). */
  readonly node?: string;
  /**
   * The pod's cgroup as a path under the node's cgroup (e.g. the kubelet's
   * `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice`); default `<name>`.
   */
  readonly cgroup?: string;
}

export interface RunOptions {
  /** Run in a child cgroup of the pod (a container), created on first use. */
  readonly container?: string;
}

export interface Pod {
  readonly name: string;
  readonly ip: string;
  readonly netnsName: string;
  readonly netnsPath: string;
  readonly cgroupPath: string;
  /** Runs a command in the pod: joins its cgroup first, then enters its netns (docs/redirect.md). */
  run(cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Like run(), for a long-lived process the test drives over stdio (killed with the pod's cgroup). */
  spawn(cmd: string, args: readonly string[], opts?: RunOptions): ChildProcessWithoutNullStreams;
}

export class Topology implements AsyncDisposable {
  /** `ferrytest-<pid>-<name>`; every resource of this topology starts with it. */
  readonly prefix: string;
  /** cgroup2 dir holding all pods (the redirector's attach point). */
  readonly cgroupRoot: string;
  /** bpffs pin root reserved for this topology's redirector. */
  readonly pinRoot: string;
  readonly #bridgeNetns: string;
  readonly #stack = new AsyncDisposableStack();
  readonly #pods = new Map<string, Pod>();

  private constructor(name: string) {
    this.prefix = `${TEST_PREFIX}${process.pid}-${name}`;
    this.cgroupRoot = join(cgroup2Root(), this.prefix);
    this.pinRoot = join(BPFFS_ROOT, this.prefix);
    this.#bridgeNetns = `${this.prefix}-br`;
  }

  static async create(name: string): Promise<Topology> {
    if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`bad topology name ${name}`);
    const topo = new Topology(name);
    try {
      await topo.#setUp();
    } catch (err) {
      await topo[Symbol.asyncDispose]();
      throw err;
    }
    return topo;
  }

  async #setUp(): Promise<void> {
    mkdirSync(this.cgroupRoot);
    this.#stack.defer(() => removeCgroupTree(this.cgroupRoot));
    await run('ip', ['netns', 'add', this.#bridgeNetns]);
    this.#stack.defer(() => run('ip', ['netns', 'delete', this.#bridgeNetns]).then(() => undefined));
    await run('ip', ['-n', this.#bridgeNetns, 'link', 'add', 'br0', 'type', 'bridge']);
    await run('ip', ['-n', this.#bridgeNetns, 'link', 'set', 'br0', 'up']);
  }

  /** The netns holding the bridge (capture traffic between pods with tcpdump on br0 there). */
  get bridgeNetnsPath(): string {
    return join(NETNS_DIR, this.#bridgeNetns);
  }

  /** `<cgroupRoot>/<node>`, created on first use: one simulated node's pods, where its redirector attaches. */
  nodeCgroup(node: string): string {
    if (!/^[a-z0-9-]+$/.test(node)) throw new Error(`bad node name ${node}`);
    const dir = join(this.cgroupRoot, node);
    mkdirSync(dir, { recursive: true }); // removed with the whole tree
    return dir;
  }

  pod(name: string): Pod {
    const pod = this.#pods.get(name);
    if (pod === undefined) throw new Error(`no pod ${name}`);
    return pod;
  }

  /** A pod at 10.244.0.<n+2>/16 on the topology's bridge (private range; traffic stays on this machine). */
  async addPod(name: string, opts: AddPodOptions = {}): Promise<Pod> {
    if (!/^[a-z0-9-]+$/.test(name) || this.#pods.has(name)) throw new Error(`bad or duplicate pod name ${name}`);
    const index = this.#pods.size;
    const ip = `10.244.${Math.floor((index + 2) / 256)}.${(index + 2) % 256}`;
    const netnsName = `${this.prefix}-${name}`;
    const parent = opts.node === undefined ? this.cgroupRoot : this.nodeCgroup(opts.node);
    const cgroupPath = join(parent, ...cgroupSegments(opts.cgroup ?? name));
    const hostSide = `v${index}`;
    await run('ip', ['netns', 'add', netnsName]);
    this.#stack.defer(() => run('ip', ['netns', 'delete', netnsName]).then(() => undefined));
    mkdirSync(cgroupPath, { recursive: true });
    // Removed with the whole tree; pods' processes are killed there before the netns goes.
    const br = ['-n', this.#bridgeNetns];
    await run('ip', [...br, 'link', 'add', hostSide, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netnsName]);
    await run('ip', [...br, 'link', 'set', hostSide, 'master', 'br0', 'up']);
    await run('ip', ['-n', netnsName, 'addr', 'add', `${ip}/16`, 'dev', 'eth0']);
    await run('ip', ['-n', netnsName, 'link', 'set', 'eth0', 'up']);
    await run('ip', ['-n', netnsName, 'link', 'set', 'lo', 'up']);
    const netnsPath = join(NETNS_DIR, netnsName);
    const pod: Pod = {
      name,
      ip,
      netnsName,
      netnsPath,
      cgroupPath,
      run: (cmd, args, opts) => runInPod(containerCgroup(cgroupPath, opts?.container), netnsPath, cmd, args),
      spawn: (cmd, args, opts) => spawnInPod(containerCgroup(cgroupPath, opts?.container), netnsPath, cmd, args),
    };
    this.#pods.set(name, pod);
    return pod;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#stack.disposeAsync();
  }
}

/** Runtimes' names (`cri-containerd-<id>.scope`, `crio-<id>`, …) are allowed; nothing that leaves the dir. */
const CGROUP_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

function cgroupSegments(path: string): string[] {
  const segments = path.split('/');
  if (!segments.every((s) => CGROUP_NAME.test(s))) throw new Error(`bad pod cgroup path ${path}`);
  return segments;
}

function containerCgroup(podCgroup: string, container: string | undefined): string {
  if (container === undefined) return podCgroup;
  if (!CGROUP_NAME.test(container)) throw new Error(`bad container name ${container}`);
  const dir = join(podCgroup, container);
  mkdirSync(dir, { recursive: true }); // removed with the pod's cgroup tree
  return dir;
}

// Join the cgroup first, then the netns: `ip netns exec` would remount /sys and hide the cgroup2 mount.
const IN_POD_SCRIPT = 'echo $$ > "$1" || exit 97; ns="$2"; shift 2; exec nsenter --net="$ns" "$@"';

function spawnInPod(
  cgroupPath: string,
  netnsPath: string,
  cmd: string,
  args: readonly string[],
): ChildProcessWithoutNullStreams {
  return spawn('sh', ['-c', IN_POD_SCRIPT, 'sh', join(cgroupPath, 'cgroup.procs'), netnsPath, cmd, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

async function runInPod(
  cgroupPath: string,
  netnsPath: string,
  cmd: string,
  args: readonly string[],
): Promise<RunResult> {
  const child = spawnInPod(cgroupPath, netnsPath, cmd, args);
  child.stdin.end();
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}
