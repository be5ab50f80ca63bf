// Names, paths and addresses of a local cluster: a pure function of the cluster name and spec, so `ferry up`,
// `ferry exec` and `ferry down` (also a later `down` after a crash) derive the same objects. No I/O here.
//
// Naming: every kernel object starts with `ferry-<cluster>_`. Cluster names are [a-z0-9-] and Kubernetes
// names never contain `_`, so the prefix of one cluster never matches another cluster's objects.
import { join } from 'node:path';
import { ClusterError } from './errors.ts';

export interface ContainerSpec {
  readonly name: string;
  /** Image reference; common ones map to the built-in test apps (see images.ts). */
  readonly image?: string;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** containerPort values; the first one is the test app's listening port. */
  readonly ports?: readonly number[];
}

export interface PodSpec {
  readonly namespace: string;
  readonly name: string;
  /** 0-based node index; pods without one are spread round-robin. */
  readonly node?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly containers: readonly ContainerSpec[];
  /** Injected with Ferry's sidecar: `ferry up` starts its istio-proxy once the controller runs (sidecars.ts). */
  readonly sidecar?: boolean;
}

export interface ClusterSpec {
  readonly name: string;
  readonly nodes: number;
  readonly pods: readonly PodSpec[];
  /** A /16; node n gets <a.b>.n.0/24. Default 10.244.0.0/16. */
  readonly podCidr?: string;
}

export const DEFAULT_POD_CIDR = '10.244.0.0/16';
export const SERVICE_CIDR = '10.96.0.0/16';
export const CGROUP_SLICE = 'ferry.slice';
export const NETNS_DIR = '/run/netns';
export const BPFFS_ROOT = '/sys/fs/bpf';
export const DEFAULT_STATE_ROOT = '/run/ferry';
/** Pods per node: .2 … .251 of the node's /24 (.1 reserved, .255 broadcast, gateway lives in .255.254). */
export const MAX_PODS_PER_NODE = 250;
export const MAX_NODES = 254;

const CLUSTER_NAME = /^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

export function validateClusterName(name: string): void {
  if (!CLUSTER_NAME.test(name)) {
    throw new ClusterError(
      'FERRY_CLUSTER_INVALID_SPEC',
      `cluster name ${JSON.stringify(name)}: use 1-48 of [a-z0-9-], starting and ending alphanumeric`,
    );
  }
}

/** Where every object of one cluster lives. */
export interface ClusterLayout {
  readonly name: string;
  readonly stateDir: string;
  readonly logDir: string;
  /** `ferry-<cluster>_`: prefix of every netns of the cluster (the sweep in `down` matches it). */
  readonly netnsPrefix: string;
  readonly bridgeNetns: string;
  /** `<cgroup2>/ferry.slice/<cluster>`: killing this tree stops every process of the cluster. */
  readonly cgroupDir: string;
  /** Parent of all pod cgroups; each node's pods live in `<podsCgroupDir>/node-<n>/<ns>_<pod>`. */
  readonly podsCgroupDir: string;
  /** Ferry's own processes (controller, ztunnels), outside the redirector's subtree. */
  readonly systemCgroupDir: string;
  readonly pinRoot: string;
}

export function clusterLayout(name: string, opts: { stateRoot: string; cgroup2Root: string }): ClusterLayout {
  validateClusterName(name);
  const stateDir = join(opts.stateRoot, name);
  const cgroupDir = join(opts.cgroup2Root, CGROUP_SLICE, name);
  return {
    name,
    stateDir,
    logDir: join(stateDir, 'logs'),
    netnsPrefix: `ferry-${name}_`,
    bridgeNetns: `ferry-${name}_bridge`,
    cgroupDir,
    podsCgroupDir: join(cgroupDir, 'pods'),
    systemCgroupDir: join(cgroupDir, 'system'),
    pinRoot: join(BPFFS_ROOT, `ferry-${name}`),
  };
}

/** `node-<n>`: the node name the controller, the ztunnels and `ferry status` use. */
export function nodeName(node: number): string {
  return `node-${node}`;
}

/**
 * The cgroup of one node's pods: that node's ztunnel attaches its redirector here, so two ztunnels never
 * see (or reconcile away) each other's pods.
 */
export function nodeCgroupDir(layout: ClusterLayout, node: number): string {
  return join(layout.podsCgroupDir, nodeName(node));
}

/** One node ztunnel's bpffs pins, below the cluster's pin root (removed by `ferry down` with it). */
export function nodePinRoot(layout: ClusterLayout, node: number): string {
  return join(layout.pinRoot, nodeName(node));
}

export interface PodNetwork {
  readonly node: number;
  readonly ip: string;
  readonly prefixLength: 16;
  readonly gateway: string;
  readonly netnsName: string;
  readonly netnsPath: string;
  readonly cgroupDir: string;
  /** Host side of the veth, inside the bridge netns (15-byte IFNAMSIZ limit: short on purpose). */
  readonly bridgePort: string;
}

export interface PlannedPod {
  readonly spec: PodSpec;
  readonly network: PodNetwork;
}

/** The /16 base "a.b" of a pod CIDR; only /16 is supported (one /24 per node). */
export function parsePodCidr(cidr: string): { readonly a: number; readonly b: number } {
  const m = /^(\d{1,3})\.(\d{1,3})\.0\.0\/16$/.exec(cidr);
  const a = Number(m?.[1]);
  const b = Number(m?.[2]);
  if (m === null || a > 255 || b > 255) {
    throw new ClusterError('FERRY_CLUSTER_INVALID_SPEC', `pod CIDR ${JSON.stringify(cidr)}: expected a.b.0.0/16`);
  }
  return { a, b };
}

export function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Validates the spec and assigns nodes, IPs and names. Throws FERRY_CLUSTER_INVALID_SPEC naming the bad value. */
export function planPods(layout: ClusterLayout, spec: ClusterSpec): PlannedPod[] {
  if (!Number.isInteger(spec.nodes) || spec.nodes < 1 || spec.nodes > MAX_NODES) {
    throw invalid(`nodes: ${spec.nodes} is not an integer in 1..${MAX_NODES}`);
  }
  const { a, b } = parsePodCidr(spec.podCidr ?? DEFAULT_POD_CIDR);
  const perNode = new Array<number>(spec.nodes).fill(0);
  const seen = new Set<string>();
  let spread = 0;
  return spec.pods.map((pod) => {
    const key = podKey(pod.namespace, pod.name);
    if (!DNS_LABEL.test(pod.namespace)) throw invalid(`pod ${key}: namespace is not a DNS label`);
    if (!DNS_SUBDOMAIN.test(pod.name)) throw invalid(`pod ${key}: name is not a DNS subdomain`);
    if (seen.has(key)) throw invalid(`pod ${key}: duplicate`);
    seen.add(key);
    validateContainers(key, pod.containers);
    const node = pod.node ?? spread++ % spec.nodes;
    if (!Number.isInteger(node) || node < 0 || node >= spec.nodes) {
      throw invalid(`pod ${key}: node ${node} is not in 0..${spec.nodes - 1}`);
    }
    const index = perNode[node] ?? 0;
    if (index >= MAX_PODS_PER_NODE) throw invalid(`node ${node}: more than ${MAX_PODS_PER_NODE} pods`);
    perNode[node] = index + 1;
    const netnsName = `${layout.netnsPrefix}${pod.namespace}_${pod.name}`;
    return {
      spec: pod,
      network: {
        node,
        ip: `${a}.${b}.${node}.${index + 2}`,
        prefixLength: 16,
        gateway: `${a}.${b}.255.254`,
        netnsName,
        netnsPath: join(NETNS_DIR, netnsName),
        cgroupDir: join(nodeCgroupDir(layout, node), `${pod.namespace}_${pod.name}`),
        bridgePort: `v${node}-${index}`,
      },
    };
  });
}

function validateContainers(key: string, containers: readonly ContainerSpec[]): void {
  // No containers is fine: a waypoint pod's proxy runs as a system process with sockets in its netns.
  const names = new Set<string>();
  for (const c of containers) {
    if (!DNS_LABEL.test(c.name) || names.has(c.name)) {
      throw invalid(`pod ${key}: container name ${JSON.stringify(c.name)} is invalid or duplicate`);
    }
    names.add(c.name);
    for (const port of c.ports ?? []) {
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        throw invalid(`pod ${key}: container ${c.name}: port ${port} is not in 1..65535`);
      }
    }
  }
}

function invalid(message: string): ClusterError {
  return new ClusterError('FERRY_CLUSTER_INVALID_SPEC', message);
}
