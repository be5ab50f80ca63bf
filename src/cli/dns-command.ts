// `ferry dns --cluster <name> --address <ip> --netns <path> --readiness <host:port>`: the local cluster's
// DNS server (src/local-cluster/dns/cluster-dns.ts), started by `ferry up -f` as a journaled system process
// and restarted by the supervisor. Records come from the cluster's controller over xDS (mesh.json names
// it); names outside the cluster domain go to the host's /etc/resolv.conf nameservers.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { clusterCliEnv } from '../local-cluster/cli-env.ts';
import { caRootPath, readMeshConfig } from '../local-cluster/controller/mesh-files.ts';
import { runClusterDns } from '../local-cluster/dns/cluster-dns.ts';
import { DNS_PORT } from '../local-cluster/dns/upstream.ts';
import { DrainController } from '../runtime/drain.ts';
import { createLogger, parseLogLevel } from '../runtime/logger.ts';
import { parseHostPort } from '../runtime/process-config.ts';
import { installSignalHandlers } from '../runtime/signals.ts';

const HELP = `usage: ferry dns --address <ip> --netns <path> [--readiness 127.0.0.1:<port>] [--cluster <name>]
                [--port 53] [--domain cluster.local] [--resolv-conf /etc/resolv.conf] [--log-level info]

Serves the local cluster's DNS (<svc>.<ns>.svc.cluster.local, pod records) on <ip>:53 inside the netns,
and forwards other names to the nameservers of --resolv-conf. Started by ferry up -f.
`;

export async function run(argv: readonly string[]): Promise<number> {
  const env = clusterCliEnv();
  const { values } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      cluster: { type: 'string', default: env.defaultCluster },
      address: { type: 'string' },
      netns: { type: 'string' },
      port: { type: 'string', default: String(DNS_PORT) },
      readiness: { type: 'string' },
      domain: { type: 'string', default: 'cluster.local' },
      'resolv-conf': { type: 'string', default: '/etc/resolv.conf' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.address === undefined || values.netns === undefined) {
    process.stderr.write(`ferry dns: --address and --netns are required\n${HELP}`);
    return 2;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write(`ferry dns: --port ${values.port} is not in 1..65535\n`);
    return 2;
  }
  const log = createLogger({ component: 'dns', level: parseLogLevel(values['log-level']) });
  const stateDir = join(env.stateRoot, values.cluster);
  const config = await readMeshConfig(stateDir);
  const drain = new DrainController();
  using _signals = installSignalHandlers({ drain, drainDeadlineMs: 0, logger: log });
  // On an API cluster the controller serves xDS over TLS with a certificate from the cluster's CA.
  const xdsRootPem = config.api === undefined ? null : await readFile(caRootPath(stateDir), 'utf8');
  await runClusterDns({
    xdsAddress: config.controller.xds,
    xdsRootPem,
    netnsPath: values.netns,
    address: values.address,
    port,
    domain: values.domain,
    resolvConfPath: values['resolv-conf'],
    readiness: values.readiness === undefined ? null : parseHostPort(values.readiness, '--readiness'),
    log,
    signal: drain.signal,
  });
  log.info({}, 'cluster DNS stopped');
  log.flush();
  return 0;
}
