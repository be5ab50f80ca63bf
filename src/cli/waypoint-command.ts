// `ferry waypoint`: runs one L7 waypoint (Gateway API HTTP/GRPC/TCPRoute, L7 authorization) until
// SIGTERM/SIGINT (graceful drain) or /quitquitquit; SIGHUP re-reads a --config file.
import { parseArgs } from 'node:util';
import { createLogger } from '../runtime/logger.ts';
import { installSignalHandlers } from '../runtime/signals.ts';
import { startWaypoint } from '../waypoint/app.ts';
import { loadWaypointConfig } from '../waypoint/config.ts';
import { readXdsRoot, WaypointXdsSource } from '../waypoint/config-xds-source.ts';
import { createZtunnelCertificates } from '../ztunnel/certificates.ts';

const HELP = `usage: ferry waypoint --waypoint <ns>/<gateway> (--config <file> | --xds-address <host:port>) [options]

  --waypoint <ns>/<name>      the Gateway (class ferry-waypoint) this process is        [FERRY_WAYPOINT]
  --service-account <sa>      identity's service account, default the Gateway name
  --config <file>             static config: ztunnel LOCAL_XDS_PATH YAML + httpRoutes, grpcRoutes,
                              tcpRoutes, authorizationPolicies, waypointGateways,
                              referenceGrants                                           [FERRY_WAYPOINT_CONFIG]
  --xds-address <host:port>   get config from the controller over delta xDS instead     [FERRY_XDS_ADDRESS]
  --xds-root <file>           root certificate for the xDS server (TLS); omit for plaintext [FERRY_XDS_ROOT]
  --node <name>               node name sent to the controller                          [FERRY_NODE_NAME]
  --network <name>            this waypoint's network; default '' (one network)         [FERRY_NETWORK]
  --trust-domain <td>         default cluster.local                                     [FERRY_TRUST_DOMAIN]
  --cluster-domain <domain>   default cluster.local                                     [FERRY_CLUSTER_DOMAIN]
  --ca-address <host:port>    gRPC CA; omit for an in-process CA                        [FERRY_CA_ADDRESS]
  --ca-root <file>            CA root certificate (PEM)                                 [FERRY_CA_ROOT]
  --ca-token <token>          bearer token presented to the CA                          [FERRY_CA_TOKEN]
  --ca-token-file <file>      bearer token read from this file at every request (a      [FERRY_CA_TOKEN_FILE]
                              projected ServiceAccount token); not with --ca-token
  --listen <host:port>        HBONE listener, default 0.0.0.0:15008                     [FERRY_WAYPOINT_LISTEN]
  --hbone-port <port>         pods' HBONE port, default 15008                           [FERRY_HBONE_PORT]
  --netns <path>              create the listener and upstream sockets in this netns   [FERRY_WAYPOINT_NETNS]
  --admin <host:port>         default 127.0.0.1:15000 (reads only)
  --admin-socket <path>       0600 Unix socket for admin changes (/quitquitquit, /logging)  [FERRY_ADMIN_SOCKET]
  --metrics <host:port>       default 0.0.0.0:15020
  --readiness <host:port>     default 0.0.0.0:15021
  --drain-deadline-ms <ms>    default 5000
  --log-level <level>         error|warn|info|debug
  --access-log on|off         one JSON line per request on stdout; default off, as    [FERRY_WAYPOINT_ACCESS_LOG]
                              Istio's waypoint (ferry up turns it on for its waypoints)
`;

export async function run(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      waypoint: { type: 'string' },
      'service-account': { type: 'string' },
      config: { type: 'string' },
      'xds-address': { type: 'string' },
      'xds-root': { type: 'string' },
      node: { type: 'string' },
      network: { type: 'string' },
      'trust-domain': { type: 'string' },
      'cluster-domain': { type: 'string' },
      'ca-address': { type: 'string' },
      'ca-root': { type: 'string' },
      'ca-token': { type: 'string' },
      'ca-token-file': { type: 'string' },
      listen: { type: 'string' },
      'hbone-port': { type: 'string' },
      netns: { type: 'string' },
      admin: { type: 'string' },
      'admin-socket': { type: 'string' },
      metrics: { type: 'string' },
      readiness: { type: 'string' },
      'drain-deadline-ms': { type: 'string' },
      'log-level': { type: 'string' },
      'access-log': { type: 'string' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const config = loadWaypointConfig(values, process.env);
  const bootLog = createLogger({ component: 'waypoint' });
  const certificates = await createZtunnelCertificates(config.ca, config.trustDomain, bootLog);
  const source =
    config.source.kind === 'xds'
      ? new WaypointXdsSource({
          address: config.source.address,
          tls: config.source.rootPath === null ? null : { rootCertPem: await readXdsRoot(config.source.rootPath) },
          waypoint: config.waypoint,
          node: config.node,
          log: bootLog,
        })
      : undefined;
  const wp = await startWaypoint(config, { certificates, ...(source === undefined ? {} : { source }) });
  using _signals = installSignalHandlers({
    drain: wp.drain,
    drainDeadlineMs: config.drainDeadlineMs,
    logger: wp.logger,
    reload: () => {
      void wp.reload();
    },
  });
  const outcome = await wp.stopped;
  const code = outcome.forced && outcome.remaining > 0 ? 1 : 0;
  setTimeout(() => process.exit(code), 200).unref();
  return code;
}
