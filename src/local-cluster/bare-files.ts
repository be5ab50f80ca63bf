// `bare.json`: what `ferry up --bare` decided for a bare cluster (docs/architecture.md "Bare cluster"):
// node count, pod CIDR, the API server's port (fixed, so a restarted API server keeps the kubeconfig
// valid) and where the kubeconfig is. From it come the launches of the cluster's Kubernetes processes,
// one definition for the first start and every restart by the supervisor (supervisor.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from './controller/mesh-files.ts';
import { type ClusterLayout, NETNS_DIR, nodeName, parsePodCidr } from './layout.ts';
import type { SystemLaunch } from './system-processes.ts';

export const BARE_FILE = 'bare.json';
export const KUBECONFIG_FILE = 'kubeconfig';
export const APISERVER_ROLE = 'apiserver';
export const KUBE_CONTROLLERS_ROLE = 'kube-controllers';

export interface BareClusterConfig {
  readonly cluster: string;
  readonly nodes: number;
  /** The cluster's /16; node n owns `<a.b>.n.0/24`. */
  readonly podCidr: string;
  readonly apiserverPort: number;
  /** The API server injects Ferry's sidecar on pod CREATE (`ferry up --api`; values in SIDECAR_INJECTION_FILE). */
  readonly sidecarInjection?: boolean;
}

/** The values of the API server's sidecar injection (apiserver/sidecar-admission.ts), as JSON. */
export const SIDECAR_INJECTION_FILE = 'sidecar-injection.json';

export function kubeconfigPath(stateDir: string): string {
  return join(stateDir, KUBECONFIG_FILE);
}

export function apiserverDataDir(stateDir: string): string {
  return join(stateDir, 'apiserver');
}

/** The pods' default gateway in the bridge netns: `<a.b>.255.254` of the cluster's /16. */
export function podGatewayAddress(podCidr: string): string {
  const { a, b } = parsePodCidr(podCidr);
  return `${a}.${b}.255.254`;
}

export function kubeletRole(node: string): string {
  return `kubelet-${node}`;
}

export async function writeBareConfig(stateDir: string, config: BareClusterConfig): Promise<void> {
  await writeJsonAtomic(join(stateDir, BARE_FILE), config);
}

/** bare.json, or null for a cluster that is not a bare one (or has none yet). */
export function readBareConfig(stateDir: string): BareClusterConfig | null {
  try {
    const v = JSON.parse(readFileSync(join(stateDir, BARE_FILE), 'utf8')) as Partial<BareClusterConfig>;
    if (typeof v.cluster !== 'string' || typeof v.nodes !== 'number' || typeof v.apiserverPort !== 'number') {
      return null;
    }
    return {
      cluster: v.cluster,
      nodes: v.nodes,
      podCidr: String(v.podCidr),
      apiserverPort: v.apiserverPort,
      ...(v.sidecarInjection === true ? { sidecarInjection: true } : {}),
    };
  } catch {
    return null;
  }
}

/** The API server, one kubelet per node and the controllers; [] when the cluster is not a bare one. */
export function bareLaunches(layout: ClusterLayout): SystemLaunch[] {
  const config = readBareConfig(layout.stateDir);
  if (config === null) return [];
  const out: SystemLaunch[] = [
    {
      role: APISERVER_ROLE,
      kind: 'apiserver',
      args: [
        'apiserver',
        '--data-dir',
        apiserverDataDir(layout.stateDir),
        '--port',
        String(config.apiserverPort),
        '--kubeconfig-out',
        kubeconfigPath(layout.stateDir),
        '--cluster-name',
        `ferry-${config.cluster}`,
        '--graceful-pod-deletion',
        ...(config.sidecarInjection === true
          ? ['--sidecar-injection', join(layout.stateDir, SIDECAR_INJECTION_FILE)]
          : []),
        // Pods' in-cluster clients (KUBERNETES_SERVICE_HOST, set by the kubelet) reach it on the gateway.
        '--pod-gateway',
        `${NETNS_DIR}/${layout.bridgeNetns}=${podGatewayAddress(config.podCidr)}`,
      ],
      env: {},
    },
  ];
  for (let i = 0; i < config.nodes; i++) {
    const node = nodeName(i);
    out.push({
      role: kubeletRole(node),
      kind: 'kubelet',
      args: ['kubelet', '--cluster', config.cluster, '--node', node],
      env: {},
    });
  }
  out.push({
    role: KUBE_CONTROLLERS_ROLE,
    kind: 'kube-controllers',
    args: ['kube-controllers', '--cluster', config.cluster],
    env: {},
  });
  return out;
}
