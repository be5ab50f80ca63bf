// The local cluster's DNS process body (`ferry dns`, docs/architecture.md "Cluster DNS"). It lives in the
// host netns, so forwarding reaches the host's resolvers, and opens its port-53 sockets inside the bridge
// netns on the pods' gateway address (the setns sandwich of src/redirect-bpf/netns.ts), the one address
// every pod reaches on-link. Records come from the controller over delta xDS, like a node agent's
// (Address resources: services and workloads): every accepted push rebuilds the table and swaps it in,
// so `ferry apply` returns only after DNS has the change too (the controller waits for every client's
// ACK). A Kubernetes API source can later feed `DnsServer.update` the same way.

import { MeshStore } from '../../mesh/mesh-store.ts';
import { closeFd, createListenerFd, inNetns, openNetns } from '../../redirect-bpf/netns.ts';
import { HttpServer, type ListenAddress } from '../../runtime/http-server.ts';
import type { Logger } from '../../runtime/logger.ts';
import { XdsClient } from '../../xds/client.ts';
import { dnsInputFromMesh } from './mesh-input.ts';
import { createUdpSocketFd } from './netns-udp.ts';
import { buildDnsRecords, DEFAULT_CLUSTER_DOMAIN, unsyncedDnsRecords } from './records.ts';
import { DnsServer } from './server.ts';
import { createUpstream, readUpstreamServers } from './upstream.ts';

export interface ClusterDnsOptions {
  /** Controller xDS `host:port` (plaintext on loopback in the local cluster). */
  readonly xdsAddress: string;
  /** The xDS server's root certificate (PEM) when xDS is TLS (a cluster on its Kubernetes API); null: plaintext. */
  readonly xdsRootPem?: string | null;
  /** Netns file the DNS sockets live in (the bridge netns); null = this process's own netns (tests). */
  readonly netnsPath: string | null;
  /** Address (and port, 53) to serve on, inside that netns. */
  readonly address: string;
  readonly port: number;
  readonly domain?: string;
  /** resolv.conf naming the upstream resolvers (the host's /etc/resolv.conf). */
  readonly resolvConfPath: string;
  /** `/healthz/ready` on loopback: ready once serving and the first xDS push is applied. */
  readonly readiness: ListenAddress | null;
  readonly log: Logger;
  readonly signal: AbortSignal;
}

/** Serves until `signal` aborts. */
export async function runClusterDns(opts: ClusterDnsOptions): Promise<void> {
  const { log } = opts;
  const domain = opts.domain ?? DEFAULT_CLUSTER_DOMAIN;
  const servers = readUpstreamServers(opts.resolvConfPath);
  const store = new MeshStore({
    onListenerError: (err) => log.error({ error: String(err) }, 'DNS record rebuild failed'),
  });
  const sockets = openSockets(opts);
  const dns = await DnsServer.start({
    udp: sockets.udp,
    tcp: sockets.tcp,
    records: unsyncedDnsRecords(domain), // SERVFAIL for cluster names until the first push
    upstream: createUpstream({ servers }),
    log: log.child({ scope: 'dns' }),
  }).catch((err: unknown) => {
    if ('fd' in sockets.udp) closeFd(sockets.udp.fd);
    if ('fd' in sockets.tcp) closeFd(sockets.tcp.fd);
    throw err;
  });
  await using stack = new AsyncDisposableStack();
  stack.defer(() => dns.close());
  using _sub = store.onChange((view) => {
    const records = buildDnsRecords(dnsInputFromMesh(view), domain);
    dns.update(records);
    log.info({ version: view.version, names: records.names.size }, 'DNS records updated');
  });
  const xds = new XdsClient({
    address: opts.xdsAddress,
    tls: opts.xdsRootPem == null ? null : { rootCertPem: opts.xdsRootPem },
    nodeId: `dns~${opts.address}~cluster-dns`,
    nodeName: 'cluster-dns',
    store,
    log,
    userAgent: 'ferry-dns',
  });
  stack.defer(() => xds.close());
  await xds.start();
  log.info(
    { address: `${opts.address}:${opts.port}`, netns: opts.netnsPath, upstream: servers.map((s) => s.host), domain },
    'cluster DNS serving',
  );
  if (opts.readiness !== null) {
    const ready = new HttpServer({
      name: 'dns-readiness',
      listen: opts.readiness,
      logger: log,
      routes: [
        {
          path: '/healthz/ready',
          methods: {
            GET: () =>
              xds.synced ? { status: 200, body: 'ready\n' } : { status: 503, body: 'waiting for the first xDS push\n' },
          },
        },
      ],
    });
    await ready.start();
    stack.defer(() => ready.close());
  }
  await new Promise<void>((resolve) => {
    if (opts.signal.aborted) resolve();
    else opts.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  log.info({ stats: dns.stats }, 'cluster DNS stopping');
}

type Target = { readonly host: string; readonly port: number } | { readonly fd: number };

function openSockets(opts: ClusterDnsOptions): { udp: Target; tcp: Target } {
  if (opts.netnsPath === null) {
    return { udp: { host: opts.address, port: opts.port }, tcp: { host: opts.address, port: opts.port } };
  }
  const nsFd = openNetns(opts.netnsPath);
  try {
    return inNetns(nsFd, () => {
      const udp = createUdpSocketFd(opts.address, opts.port);
      try {
        return { udp: { fd: udp }, tcp: { fd: createListenerFd({ address: opts.address, port: opts.port }) } };
      } catch (err) {
        closeFd(udp);
        throw err;
      }
    });
  } finally {
    closeFd(nsFd);
  }
}
