// How the local cluster's node agents are launched: one definition for `ferry up` (the first start) and
// the supervisor (every restart), so a restarted ztunnel or waypoint gets exactly the arguments and
// environment of the first one. Secrets (the node's CA token) travel in the environment, never in argv
// (world-readable in /proc).
import { join } from 'node:path';
import { ztunnelNodeOptions } from '../ztunnel/heap-limits.ts';
import {
  adminSocketPath,
  caDirPath,
  caRootPath,
  type LocalMeshConfig,
  nodeTokensPath,
} from './controller/mesh-files.ts';
import { DNS_ROLE, readDnsFile } from './dns/dns-file.ts';
import { type ClusterLayout, nodeCgroupDir, nodePinRoot } from './layout.ts';
import type { LocalSidecar } from './sidecars.ts';
import type { LocalWaypoint } from './waypoints.ts';

/** The audience of the waypoint pods' projected CA tokens (the chart's `ca.tokenAudience`). */
export const WAYPOINT_CA_AUDIENCE = 'ferry-ca';
/** The trust bundle ConfigMap the controller writes and waypoint pods mount (the chart's default name). */
export const ROOT_CERT_CONFIGMAP = 'ferry-ca-root-cert';

export interface SystemLaunch {
  readonly role: string;
  readonly kind: 'ztunnel' | 'waypoint' | 'dns' | 'sidecar' | 'apiserver' | 'kubelet' | 'kube-controllers';
  /** `ferry` arguments. */
  readonly args: readonly string[];
  /** Added to the cluster's base environment. */
  readonly env: Readonly<Record<string, string>>;
  /**
   * Where it runs when not in `system/<role>` (a sidecar: its pod's istio-proxy cgroup), and its log file
   * (default `<logDir>/<role>.log`).
   */
  readonly placement?: { readonly cgroupDir: string; readonly logFile: string };
}

/** Variables `ferry up` hands on to the supervisor so that restarted processes are tuned the same way. */
export const TUNING_ENV = [
  'FERRY_ZTUNNEL_NODE_OPTIONS',
  'FERRY_WAYPOINT_NODE_OPTIONS',
  'FERRY_WAYPOINT_HTTP1_CLIENT',
] as const;

export function tuningEnv(from: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of TUNING_ENV) {
    const v = from[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** The ztunnel of node `index` (mesh.json's nodes[index]), or undefined when there is no such node. */
export function ztunnelLaunch(
  layout: ClusterLayout,
  config: LocalMeshConfig,
  index: number,
  from: NodeJS.ProcessEnv = process.env,
  /** Another admin socket path (a replacement ztunnel while the old one still holds the usual one). */
  adminSocket?: string,
): SystemLaunch | undefined {
  const node = config.nodes[index];
  if (node === undefined) return undefined;
  const role = `ztunnel-${node.name}`;
  return {
    role,
    kind: 'ztunnel',
    args: [
      'ztunnel',
      '--node',
      node.name,
      '--trust-domain',
      config.trustDomain,
      '--xds-address',
      config.controller.xds,
      '--ca-address',
      config.controller.ca,
      '--ca-root',
      caRootPath(layout.stateDir),
      '--admin',
      node.admin,
      '--admin-socket', // where the controller enrolls pods: 0600, root only
      adminSocket ?? adminSocketPath(layout.stateDir, role),
      '--metrics',
      node.metrics,
      '--readiness',
      node.readiness,
      '--redirect',
      'bpf',
      '--cgroup-root',
      nodeCgroupDir(layout, index),
      '--pin-root',
      nodePinRoot(layout, index),
      // On the API path enrollment is rebuilt from the pinned maps and the API, as the chart runs it (no
      // file: a replacement ztunnel must not re-enroll from what the one it replaces last wrote).
      '--redirect-state',
      config.api === undefined ? join(layout.stateDir, `${role}-pods.json`) : '',
      // On an API cluster the node agent enrolls from the API, and xDS is TLS from the controller's CA.
      ...(config.api === undefined
        ? []
        : [
            '--enroll-from',
            'kubernetes',
            '--kubeconfig',
            config.api.kubeconfig,
            '--xds-root',
            caRootPath(layout.stateDir),
          ]),
    ],
    env: {
      FERRY_CA_TOKEN: node.token,
      // Heap limits (src/ztunnel/heap-limits.ts, docs/operations.md), then the operator's profiling and GC
      // tuning of ztunnels only (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof), which win over the limits.
      NODE_OPTIONS: ztunnelNodeOptions(from.FERRY_ZTUNNEL_NODE_OPTIONS),
    },
  };
}

/** A waypoint as `ferry up` started it (waypoints.json), or undefined when its node is unknown. */
export function waypointLaunch(
  config: LocalMeshConfig,
  w: LocalWaypoint,
  from: NodeJS.ProcessEnv = process.env,
): SystemLaunch | undefined {
  const token = config.nodes.find((n) => n.name === w.node)?.token;
  if (token === undefined || !Array.isArray(w.args)) return undefined;
  return {
    role: w.role,
    kind: 'waypoint',
    args: w.args,
    env: {
      FERRY_CA_TOKEN: token,
      // Profiling and GC tuning of waypoints only (e.g. --cpu-prof, --max-semi-space-size=16).
      ...(from.FERRY_WAYPOINT_NODE_OPTIONS === undefined ? {} : { NODE_OPTIONS: from.FERRY_WAYPOINT_NODE_OPTIONS }),
      ...(from.FERRY_WAYPOINT_HTTP1_CLIENT === undefined
        ? {}
        : { FERRY_WAYPOINT_HTTP1_CLIENT: from.FERRY_WAYPOINT_HTTP1_CLIENT }),
    },
  };
}

/** A pod's sidecar as `ferry up` started it (sidecars.json), or undefined when its node is unknown. */
export function sidecarLaunch(config: LocalMeshConfig, s: LocalSidecar): SystemLaunch | undefined {
  const token = config.nodes.find((n) => n.name === s.node)?.token;
  if (token === undefined || !Array.isArray(s.args) || typeof s.cgroupDir !== 'string') return undefined;
  return {
    role: s.role,
    kind: 'sidecar',
    args: s.args,
    env: { FERRY_CA_TOKEN: token },
    placement: { cgroupDir: s.cgroupDir, logFile: s.logFile },
  };
}

/** The cluster DNS process as `ferry up` started it (dns.json), or undefined for a cluster without one. */
export function dnsLaunch(stateDir: string): SystemLaunch | undefined {
  const dns = readDnsFile(stateDir);
  return dns === null ? undefined : { role: DNS_ROLE, kind: 'dns', args: dns.args, env: {} };
}

/**
 * `ferry controller` arguments for a cluster on its Kubernetes API (mesh.json `api`): the controller on the
 * API with the cluster's CA (`ca/`, so a restart keeps the root), the node tokens file for the CA, xDS over
 * TLS on loopback (clients dial `localhost`, the certificate's SAN), `/healthz/ready` on the address
 * mesh.json calls the controller's admin, and the Lease in kube-system. With `api.podGateway` (waypoints as
 * Deployments, docs/architecture.md "Waypoints on the local API"): the waypoint template, the trust bundle
 * ConfigMap the waypoint pods mount, TokenReview of their projected tokens (audience WAYPOINT_CA_AUDIENCE;
 * the node agents keep their node tokens), and the gateway address as an IP SAN of the xDS and CA
 * certificates (what the pods dial, through the relay). Null for a file-based cluster.
 */
export function apiControllerArgs(stateDir: string, config: LocalMeshConfig): string[] | null {
  if (config.api === undefined) return null;
  const gw = config.api.podGateway;
  const port = (hostPort: string) => hostPort.slice(hostPort.lastIndexOf(':') + 1);
  return [
    'controller',
    '--kubeconfig',
    config.api.kubeconfig,
    '--xds-address',
    `127.0.0.1:${port(config.controller.xds)}`,
    '--ca-address',
    config.controller.ca,
    '--ca-dir',
    caDirPath(stateDir),
    '--node-tokens',
    nodeTokensPath(stateDir),
    '--trust-domain',
    config.trustDomain,
    '--readiness',
    config.controller.admin,
    '--admin',
    '127.0.0.1:0',
    '--metrics',
    '127.0.0.1:0',
    '--lease-namespace',
    'kube-system',
    '--identity',
    `${config.cluster}-controller`,
    ...(gw === undefined
      ? []
      : [
          '--waypoint-template',
          gw.waypointTemplate,
          '--root-cert-configmap',
          ROOT_CERT_CONFIGMAP,
          '--ca-token-audience',
          WAYPOINT_CA_AUDIENCE,
          '--tls-ip-addresses',
          gw.address,
        ]),
  ];
}
