// `ferry waypoint` configuration: parsed once from CLI flags with FERRY_* environment fallbacks. The CA,
// process-server and xDS flags mean what they mean for the ztunnel.
import {
  type CaConfig,
  ConfigError,
  type HostPort,
  parseAdminSocket,
  parseCaToken,
  parseHostPort,
} from '../runtime/process-config.ts';
import type { WaypointIdentity } from './config-types.ts';

export interface WaypointProcessConfig {
  readonly waypoint: WaypointIdentity;
  readonly serviceAccount: string;
  readonly trustDomain: string;
  readonly clusterDomain: string;
  readonly node: string;
  /** This waypoint's network (Istio's NETWORK); '' = the default network. */
  readonly network: string;
  readonly source:
    | { readonly kind: 'file'; readonly path: string }
    /** rootPath: `--xds-root`, the PEM root verifying the controller's TLS; null = plaintext (local mode). */
    | { readonly kind: 'xds'; readonly address: string; readonly rootPath: string | null };
  readonly ca: CaConfig;
  readonly listen: HostPort;
  /** Port of the pods' HBONE listeners (15008; tests use others). */
  readonly hbonePort: number;
  /** Network namespace (path) the data-path sockets live in: the waypoint pod's; null = this process's. */
  readonly netns: string | null;
  readonly adminAddress: HostPort;
  /** The 0600 admin socket where POST admin endpoints are served (root only); null: none. */
  readonly adminSocketPath: string | null;
  readonly metricsAddress: HostPort;
  readonly readinessAddress: HostPort;
  readonly drainDeadlineMs: number;
  readonly logLevel: string;
  /** FERRY_WAYPOINT_HTTP1_CLIENT: the upstream HTTP/1.1 client, `undici` (default) or node:http's `agent`. */
  readonly http1Client?: 'undici' | 'agent';
  /** `--access-log on|off` [FERRY_WAYPOINT_ACCESS_LOG]: one JSON line per request; default off (Istio's). */
  readonly accessLog?: boolean;
}

export interface WaypointFlags {
  readonly waypoint?: string;
  readonly 'service-account'?: string;
  readonly 'trust-domain'?: string;
  readonly 'cluster-domain'?: string;
  readonly node?: string;
  readonly network?: string;
  readonly config?: string;
  readonly 'xds-address'?: string;
  readonly 'xds-root'?: string;
  readonly 'ca-address'?: string;
  readonly 'ca-root'?: string;
  readonly 'ca-token'?: string;
  readonly 'ca-token-file'?: string;
  readonly listen?: string;
  readonly 'hbone-port'?: string;
  readonly netns?: string;
  readonly admin?: string;
  readonly 'admin-socket'?: string;
  readonly metrics?: string;
  readonly readiness?: string;
  readonly 'drain-deadline-ms'?: string;
  readonly 'log-level'?: string;
  readonly 'access-log'?: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function port(text: string, what: string): number {
  const n = Number(text);
  if (!/^[0-9]{1,5}$/.test(text) || n < 1 || n > 65535) throw new ConfigError(`${what}: expected a port, got ${text}`);
  return n;
}

export function loadWaypointConfig(flags: WaypointFlags, env: NodeJS.ProcessEnv): WaypointProcessConfig {
  const ref = flags.waypoint ?? env.FERRY_WAYPOINT;
  const [namespace, name, ...rest] = (ref ?? '').split('/');
  if (
    namespace === undefined ||
    name === undefined ||
    rest.length > 0 ||
    !DNS_LABEL.test(namespace) ||
    !DNS_LABEL.test(name)
  ) {
    throw new ConfigError(`--waypoint <namespace>/<gateway name> is required, got ${JSON.stringify(ref ?? '')}`);
  }
  const configPath = flags.config ?? env.FERRY_WAYPOINT_CONFIG;
  const xds = flags['xds-address'] ?? env.FERRY_XDS_ADDRESS;
  if ((configPath === undefined) === (xds === undefined)) {
    throw new ConfigError('exactly one of --config <file> and --xds-address <host:port> is required');
  }
  if (xds !== undefined) parseHostPort(xds, '--xds-address');
  const caAddress = flags['ca-address'] ?? env.FERRY_CA_ADDRESS;
  let ca: CaConfig;
  if (caAddress === undefined) ca = { kind: 'in-process', caDir: null };
  else {
    const rootCertPath = flags['ca-root'] ?? env.FERRY_CA_ROOT;
    if (rootCertPath === undefined) throw new ConfigError('--ca-root is required with --ca-address');
    ca = {
      kind: 'grpc',
      address: parseHostPort(caAddress, '--ca-address'),
      rootCertPath,
      token: parseCaToken(flags, env),
    };
  }
  const http1Client = env.FERRY_WAYPOINT_HTTP1_CLIENT ?? 'undici';
  if (http1Client !== 'undici' && http1Client !== 'agent')
    throw new ConfigError(`FERRY_WAYPOINT_HTTP1_CLIENT: expected undici or agent, got ${JSON.stringify(http1Client)}`);
  const accessLog = flags['access-log'] ?? env.FERRY_WAYPOINT_ACCESS_LOG ?? 'off';
  if (accessLog !== 'on' && accessLog !== 'off')
    throw new ConfigError(`--access-log: expected on or off, got ${JSON.stringify(accessLog)}`);
  const deadline = Number(flags['drain-deadline-ms'] ?? env.FERRY_DRAIN_DEADLINE_MS ?? '5000');
  if (!Number.isInteger(deadline) || deadline < 0)
    throw new ConfigError('--drain-deadline-ms: expected a non-negative integer');
  return {
    waypoint: { namespace, name },
    serviceAccount: flags['service-account'] ?? name,
    trustDomain: flags['trust-domain'] ?? env.FERRY_TRUST_DOMAIN ?? 'cluster.local',
    clusterDomain: flags['cluster-domain'] ?? env.FERRY_CLUSTER_DOMAIN ?? 'cluster.local',
    node: flags.node ?? env.FERRY_NODE_NAME ?? 'local',
    network: flags.network ?? env.FERRY_NETWORK ?? '',
    source:
      configPath !== undefined
        ? { kind: 'file', path: configPath }
        : { kind: 'xds', address: xds as string, rootPath: flags['xds-root'] || env.FERRY_XDS_ROOT || null },
    ca,
    listen: parseHostPort(flags.listen ?? env.FERRY_WAYPOINT_LISTEN ?? '0.0.0.0:15008', '--listen'),
    hbonePort: port(flags['hbone-port'] ?? env.FERRY_HBONE_PORT ?? '15008', '--hbone-port'),
    netns: flags.netns ?? env.FERRY_WAYPOINT_NETNS ?? null,
    adminAddress: parseHostPort(flags.admin ?? env.FERRY_ADMIN_ADDRESS ?? '127.0.0.1:15000', '--admin'),
    adminSocketPath: parseAdminSocket(flags['admin-socket'] ?? env.FERRY_ADMIN_SOCKET),
    metricsAddress: parseHostPort(flags.metrics ?? env.FERRY_METRICS_ADDRESS ?? '0.0.0.0:15020', '--metrics'),
    readinessAddress: parseHostPort(flags.readiness ?? env.FERRY_READINESS_ADDRESS ?? '0.0.0.0:15021', '--readiness'),
    drainDeadlineMs: deadline,
    logLevel: flags['log-level'] ?? env.FERRY_LOG_LEVEL ?? 'info',
    http1Client,
    accessLog: accessLog === 'on',
  };
}
