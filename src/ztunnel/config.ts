// ztunnel process configuration: parsed once, from CLI flags with FERRY_* environment fallbacks.
// Nothing else in the ztunnel reads process.env (STYLE.md §9). Invalid values fail startup with a message
// naming the flag.
import { validateTrustDomain } from '../identity/spiffe-id.ts';
import {
  type ConnectionLimits,
  DEFAULT_CONNECTION_LIMITS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
} from '../runtime/connection-limiter.ts';
import {
  type CaConfig,
  ConfigError,
  type HostPort,
  parseAdminSocket,
  parseCaToken,
  parseHostPort,
} from '../runtime/process-config.ts';
import { isSafePodUid } from './node-agent/cgroup-paths.ts';
import { detectCgroupRoot } from './node-agent/locate.ts';

export interface PlaintextInboundForward {
  /** Where the ztunnel listens for plaintext (the loopback stand-in for the 15006 capture). */
  readonly listen: HostPort;
  /** The original destination those connections are treated as addressed to. */
  readonly originalDestination: HostPort;
}

export type ConfigSourceConfig =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'xds'; readonly address: string; readonly rootPath: string | null };

/** How enrolled pods' traffic reaches this ztunnel. */
export type RedirectMode =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'bpf';
      /** cgroup2 directory holding this node's pods (the redirector attaches there). */
      readonly cgroupRoot: string;
      /** bpffs directory for pinned maps and links (default /sys/fs/bpf/ferry). */
      readonly pinRoot: string;
      /** Where enrollments are persisted across restarts; null: not persisted. */
      readonly statePath: string | null;
    };

/** Who decides which pods are enrolled: the admin socket's POST/DELETE /pods, or the node agent. */
export type EnrollFrom =
  | { readonly kind: 'admin' }
  | {
      readonly kind: 'kubernetes';
      /** `--kubeconfig`; else KUBECONFIG, else the in-cluster service account. */
      readonly kubeconfigPath: string | null;
      readonly kubeconfigEnv: string | null;
      readonly inCluster: boolean;
      /** The host's /proc (a DaemonSet mounts it at /host/proc): pods' netns are found there. */
      readonly hostProc: string;
      /**
       * `--pod-uid`: this ztunnel's own pod (DaemonSet: the downward API's metadata.uid). Its cgroup is
       * exempted from the fail-closed guard before the guard is armed, so a new ztunnel pod can reach the API.
       */
      readonly podUid: string | null;
    };

export interface ZtunnelConfig {
  readonly node: string;
  /** This node's network (Istio's NETWORK); '' = the default network. Endpoint choice prefers it. */
  readonly network: string;
  readonly trustDomain: string;
  readonly clusterId: string;
  /** Where the mesh config comes from: a static file (Istio's LOCAL_XDS_PATH shape) or the controller. */
  readonly configSource: ConfigSourceConfig;
  readonly ca: CaConfig;
  readonly adminAddress: HostPort;
  /** The 0600 admin socket where POST/DELETE admin endpoints are served (root only); null: none. */
  readonly adminSocketPath: string | null;
  readonly metricsAddress: HostPort;
  readonly readinessAddress: HostPort;
  /** SOCKS5 outbound entry; null = disabled (opt-in, as in Istio). */
  readonly socks5Address: HostPort | null;
  readonly hbonePort: number;
  readonly plaintextInbound: readonly PlaintextInboundForward[];
  /** Source address for connections to local apps (Istio's in-pod 127.0.0.6). */
  readonly inboundSourceAddress: string;
  readonly drainDeadlineMs: number;
  readonly poolIdleTimeoutMs: number;
  /** Concurrent connections to all HBONE listeners (15008) together: per source IP and in total. */
  readonly hboneConnectionLimits?: ConnectionLimits;
  /** TLS handshake deadline of new HBONE connections (Envoy's transport_socket_connect_timeout). */
  readonly handshakeTimeoutMs?: number;
  readonly logLevel: string;
  /** In-pod mode through the BPF redirector, or none (loopback listeners only). Absent = none. */
  readonly redirect?: RedirectMode;
  /** Absent = admin. */
  readonly enrollFrom?: EnrollFrom;
}

export const ZTUNNEL_PORTS = { outbound: 15001, inboundPlaintext: 15006, hbone: 15008, socks5: 15080 } as const;

export interface ZtunnelFlags {
  readonly config?: string;
  readonly 'xds-address'?: string;
  readonly 'xds-root'?: string;
  readonly node?: string;
  readonly network?: string;
  readonly 'trust-domain'?: string;
  readonly 'cluster-id'?: string;
  readonly 'ca-address'?: string;
  readonly 'ca-root'?: string;
  readonly 'ca-token'?: string;
  readonly 'ca-token-file'?: string;
  readonly 'in-process-ca'?: boolean;
  readonly 'ca-dir'?: string;
  readonly admin?: string;
  readonly 'admin-socket'?: string;
  readonly metrics?: string;
  readonly readiness?: string;
  readonly socks5?: string;
  readonly 'hbone-port'?: string;
  readonly 'plaintext-inbound'?: readonly string[];
  readonly 'drain-deadline-ms'?: string;
  readonly 'log-level'?: string;
  readonly redirect?: string;
  readonly 'cgroup-root'?: string;
  readonly 'pin-root'?: string;
  readonly 'redirect-state'?: string;
  readonly 'enroll-from'?: string;
  readonly 'host-proc'?: string;
  readonly 'pod-uid'?: string;
  readonly kubeconfig?: string;
}

function atLeastOne(text: string | undefined, fallback: number, variable: string): number {
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new ConfigError(`the ${variable} variable: expected an integer ≥ 1, got ${text}`);
  return n;
}

function positiveInt(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${what}: expected a non-negative integer, got ${text}`);
  return n;
}

/** Builds the config from flags, falling back to FERRY_* variables of `env`. Throws ConfigError. */
export function loadZtunnelConfig(
  flags: ZtunnelFlags,
  env: NodeJS.ProcessEnv,
  detectPodCgroupRoot: () => string = detectCgroupRoot,
): ZtunnelConfig {
  const configPath = flags.config ?? env.FERRY_LOCAL_XDS_PATH;
  const xdsAddress = flags['xds-address'] ?? env.FERRY_XDS_ADDRESS;
  if (configPath !== undefined && xdsAddress !== undefined) {
    throw new ConfigError('--config and --xds-address are exclusive: config comes from a file or from the controller');
  }
  let configSource: ConfigSourceConfig;
  if (xdsAddress !== undefined) {
    parseHostPort(xdsAddress, '--xds-address');
    configSource = { kind: 'xds', address: xdsAddress, rootPath: flags['xds-root'] ?? env.FERRY_XDS_ROOT ?? null };
  } else if (configPath !== undefined) {
    configSource = { kind: 'file', path: configPath };
  } else {
    throw new ConfigError('one of --config <file> or --xds-address <host:port> is required');
  }
  const trustDomain = flags['trust-domain'] ?? env.FERRY_TRUST_DOMAIN ?? 'cluster.local';
  const tdError = validateTrustDomain(trustDomain);
  if (tdError !== null) throw new ConfigError(`--trust-domain: ${tdError}`);
  const caAddress = flags['ca-address'] ?? env.FERRY_CA_ADDRESS;
  let ca: CaConfig;
  if (flags['in-process-ca'] === true || caAddress === undefined) {
    ca = { kind: 'in-process', caDir: flags['ca-dir'] ?? env.FERRY_CA_DIR ?? null };
  } else {
    const rootCertPath = flags['ca-root'] ?? env.FERRY_CA_ROOT;
    if (rootCertPath === undefined) throw new ConfigError('--ca-root is required with --ca-address');
    ca = {
      kind: 'grpc',
      address: parseHostPort(caAddress, '--ca-address'),
      rootCertPath,
      token: parseCaToken(flags, env),
    };
  }
  const socks5 = flags.socks5 ?? env.FERRY_SOCKS5_ADDRESS;
  const plaintextInbound = (flags['plaintext-inbound'] ?? []).map((spec) => {
    const [listen, dst] = spec.split('=');
    if (listen === undefined || dst === undefined) {
      throw new ConfigError(`--plaintext-inbound: expected <listen host:port>=<original dst host:port>, got ${spec}`);
    }
    return {
      listen: parseHostPort(listen, '--plaintext-inbound'),
      originalDestination: parseHostPort(dst, '--plaintext-inbound'),
    };
  });
  return {
    node: flags.node ?? env.FERRY_NODE_NAME ?? 'local',
    network: flags.network ?? env.FERRY_NETWORK ?? '',
    trustDomain,
    clusterId: flags['cluster-id'] ?? env.FERRY_CLUSTER_ID ?? 'Kubernetes',
    configSource,
    ca,
    adminAddress: parseHostPort(flags.admin ?? env.FERRY_ADMIN_ADDRESS ?? '127.0.0.1:15000', '--admin'),
    adminSocketPath: parseAdminSocket(flags['admin-socket'] ?? env.FERRY_ADMIN_SOCKET),
    metricsAddress: parseHostPort(flags.metrics ?? env.FERRY_METRICS_ADDRESS ?? '0.0.0.0:15020', '--metrics'),
    readinessAddress: parseHostPort(flags.readiness ?? env.FERRY_READINESS_ADDRESS ?? '0.0.0.0:15021', '--readiness'),
    socks5Address: socks5 === undefined || socks5 === '' ? null : parseHostPort(socks5, '--socks5'),
    hbonePort: positiveInt(flags['hbone-port'] ?? env.FERRY_HBONE_PORT ?? '15008', '--hbone-port'),
    plaintextInbound,
    inboundSourceAddress: env.FERRY_INBOUND_SOURCE_ADDRESS ?? '127.0.0.6',
    drainDeadlineMs: positiveInt(
      flags['drain-deadline-ms'] ?? env.FERRY_DRAIN_DEADLINE_MS ?? '5000',
      '--drain-deadline-ms',
    ),
    poolIdleTimeoutMs: positiveInt(
      env.FERRY_POOL_IDLE_TIMEOUT_MS ?? '300000',
      'the FERRY_POOL_IDLE_TIMEOUT_MS variable',
    ),
    hboneConnectionLimits: {
      maxPerSource: atLeastOne(
        env.FERRY_HBONE_MAX_CONNECTIONS_PER_SOURCE,
        DEFAULT_CONNECTION_LIMITS.hbone.maxPerSource,
        'FERRY_HBONE_MAX_CONNECTIONS_PER_SOURCE',
      ),
      maxTotal: atLeastOne(
        env.FERRY_HBONE_MAX_CONNECTIONS,
        DEFAULT_CONNECTION_LIMITS.hbone.maxTotal,
        'FERRY_HBONE_MAX_CONNECTIONS',
      ),
    },
    handshakeTimeoutMs: atLeastOne(
      env.FERRY_HANDSHAKE_TIMEOUT_MS,
      DEFAULT_HANDSHAKE_TIMEOUT_MS,
      'FERRY_HANDSHAKE_TIMEOUT_MS',
    ),
    logLevel: flags['log-level'] ?? env.FERRY_LOG_LEVEL ?? 'info',
    ...parseEnrollment(flags, env, detectPodCgroupRoot),
  };
}

/** `--enroll-from=kubernetes` implies the BPF redirector and, without --cgroup-root, the detected pod root. */
function parseEnrollment(
  flags: ZtunnelFlags,
  env: NodeJS.ProcessEnv,
  detectPodCgroupRoot: () => string,
): { redirect: RedirectMode; enrollFrom: EnrollFrom } {
  const node = flags.node ?? env.FERRY_NODE_NAME ?? 'local';
  const from = flags['enroll-from'] ?? env.FERRY_ENROLL_FROM ?? 'admin';
  if (from === 'admin') {
    if (flags['host-proc'] !== undefined || flags.kubeconfig !== undefined || flags['pod-uid'] !== undefined) {
      throw new ConfigError('--host-proc, --kubeconfig and --pod-uid need --enroll-from=kubernetes');
    }
    return { redirect: parseRedirect(flags, env, node), enrollFrom: { kind: 'admin' } };
  }
  if (from !== 'kubernetes') {
    throw new ConfigError(`--enroll-from: expected admin or kubernetes, got ${JSON.stringify(from)}`);
  }
  if ((flags.redirect ?? env.FERRY_REDIRECT ?? 'bpf') !== 'bpf') {
    throw new ConfigError('--enroll-from=kubernetes captures pods with the BPF redirector: use --redirect bpf');
  }
  if (flags.node === undefined && env.FERRY_NODE_NAME === undefined) {
    throw new ConfigError('--enroll-from=kubernetes needs --node <name> (the pods with spec.nodeName=<name>)');
  }
  const hostProc = flags['host-proc'] ?? env.FERRY_HOST_PROC ?? '/proc';
  if (!hostProc.startsWith('/')) throw new ConfigError(`--host-proc: expected an absolute path, got ${hostProc}`);
  const podUid = flags['pod-uid'] ?? env.FERRY_POD_UID ?? '';
  if (podUid !== '' && !isSafePodUid(podUid)) {
    throw new ConfigError(`--pod-uid: expected a Kubernetes uid (letters, digits, -), got ${JSON.stringify(podUid)}`);
  }
  let cgroupRoot = flags['cgroup-root'] ?? env.FERRY_CGROUP_ROOT;
  if (cgroupRoot === undefined) {
    try {
      cgroupRoot = detectPodCgroupRoot();
    } catch (err) {
      throw new ConfigError(`--cgroup-root: ${(err as Error).message}`);
    }
  }
  const redirect = parseRedirect({ ...flags, redirect: 'bpf', 'cgroup-root': cgroupRoot }, env, node);
  return {
    redirect,
    enrollFrom: {
      kind: 'kubernetes',
      kubeconfigPath: flags.kubeconfig ?? null,
      kubeconfigEnv: env.KUBECONFIG ?? null,
      inCluster: env.KUBERNETES_SERVICE_HOST !== undefined,
      hostProc,
      podUid: podUid === '' ? null : podUid,
    },
  };
}

const DEFAULT_PIN_ROOT = '/sys/fs/bpf/ferry';

function parseRedirect(flags: ZtunnelFlags, env: NodeJS.ProcessEnv, node: string): RedirectMode {
  const mode = flags.redirect ?? env.FERRY_REDIRECT ?? 'none';
  if (mode === 'none') return { kind: 'none' };
  if (mode !== 'bpf') throw new ConfigError(`--redirect: expected none or bpf, got ${JSON.stringify(mode)}`);
  const cgroupRoot = flags['cgroup-root'] ?? env.FERRY_CGROUP_ROOT;
  if (cgroupRoot === undefined || !cgroupRoot.startsWith('/')) {
    throw new ConfigError('--cgroup-root <absolute cgroup2 dir> is required with --redirect bpf');
  }
  const pinRoot = flags['pin-root'] ?? env.FERRY_PIN_ROOT ?? DEFAULT_PIN_ROOT;
  if (!pinRoot.startsWith('/')) throw new ConfigError(`--pin-root: expected an absolute path, got ${pinRoot}`);
  const state = flags['redirect-state'] ?? env.FERRY_REDIRECT_STATE ?? `/run/ferry/ztunnel-${node}-pods.json`;
  return { kind: 'bpf', cgroupRoot, pinRoot, statePath: state === '' ? null : state };
}
