// The Node object of a local-cluster node and the status its kubelet reports: Ready, addresses (every
// node shares the host, so InternalIP is the loopback address the API listens on), capacity in pods
// (one /24 per node), nodeInfo. Pure.
import type { Json } from '../../kube/client.ts';
import { MAX_PODS_PER_NODE } from '../layout.ts';

export const KUBELET_VERSION = 'v1.34.0-ferry';

/** The Node `ferry up --bare` registers for node `index` (its podCIDR is `<a.b>.<index>.0/24`). */
export function nodeObject(name: string, podCidr: string): Json {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
      },
    },
    spec: { podCIDR: podCidr, podCIDRs: [podCidr] },
  };
}

export function readyNodeStatus(name: string, hostIp: string, now: string): Json {
  const capacity = { pods: String(MAX_PODS_PER_NODE), cpu: '2', memory: '8Gi' };
  return {
    conditions: [
      {
        type: 'Ready',
        status: 'True',
        reason: 'KubeletReady',
        message: 'kubelet is posting ready status',
        lastHeartbeatTime: now,
        lastTransitionTime: now,
      },
    ],
    addresses: [
      { type: 'InternalIP', address: hostIp },
      { type: 'Hostname', address: name },
    ],
    capacity,
    allocatable: capacity,
    daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
    nodeInfo: {
      kubeletVersion: KUBELET_VERSION,
      kubeProxyVersion: '',
      containerRuntimeVersion: 'ferry://local',
      operatingSystem: 'linux',
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      osImage: 'Ferry local cluster',
      kernelVersion: '',
      machineID: '',
      systemUUID: '',
      bootID: '',
    },
  };
}

/** `a.b` and the node number of a `a.b.n.0/24` pod CIDR, or null. */
export function parseNodePodCidr(cidr: unknown): { base: string; node: number } | null {
  if (typeof cidr !== 'string') return null;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(cidr);
  if (m === null) return null;
  const [a, b, n] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (a > 255 || b > 255 || n > 254) return null;
  return { base: `${a}.${b}`, node: n };
}
