// `ferry ztunnel`: runs one node proxy until SIGTERM/SIGINT (graceful drain) or /quitquitquit; SIGHUP
// re-reads the config file (a bad file is rejected and the running config stays).
import { parseArgs } from 'node:util';
import { createLogger } from '../runtime/logger.ts';
import { installSignalHandlers } from '../runtime/signals.ts';
import { startZtunnel } from '../ztunnel/app.ts';
import { createZtunnelCertificates } from '../ztunnel/certificates.ts';
import { loadZtunnelConfig } from '../ztunnel/config.ts';
import { applyZtunnelGcTuning } from '../ztunnel/gc-tuning.ts';
import { parseSidecarFlags, startSidecar } from '../ztunnel/sidecar/sidecar.ts';
import { sidecarL7 } from './sidecar-l7.ts';

const HELP = `usage: ferry ztunnel (--config <mesh.yaml> | --xds-address <host:port>) [options]

  --config <file>             static mesh config (Istio ztunnel LOCAL_XDS_PATH shape)   [FERRY_LOCAL_XDS_PATH]
  --xds-address <host:port>   get config from the controller over delta xDS instead     [FERRY_XDS_ADDRESS]
  --xds-root <file>           root certificate for the xDS server (TLS); omit for plaintext [FERRY_XDS_ROOT]
  --node <name>               this node's name: its workloads are served here          [FERRY_NODE_NAME]
  --network <name>            this node's network; default '' (one network)             [FERRY_NETWORK]
  --trust-domain <td>         default cluster.local                                     [FERRY_TRUST_DOMAIN]
  --ca-address <host:port>    gRPC CA (IstioCertificateService); omit for an in-process CA [FERRY_CA_ADDRESS]
  --ca-root <file>            CA root certificate (PEM) to verify the CA server         [FERRY_CA_ROOT]
  --ca-token <token>          bearer token presented to the CA                          [FERRY_CA_TOKEN]
  --ca-token-file <file>      bearer token read from this file at every request (a      [FERRY_CA_TOKEN_FILE]
                              projected ServiceAccount token); not with --ca-token
  --in-process-ca             sign certificates in this process (single node, tests)
  --ca-dir <dir>              with --in-process-ca: Istio cacerts layout to load
  --admin <host:port>         default 127.0.0.1:15000 (reads only)
  --admin-socket <path>       0600 Unix socket for admin changes (/pods, /logging, /quitquitquit)  [FERRY_ADMIN_SOCKET]
  --metrics <host:port>       default 0.0.0.0:15020
  --readiness <host:port>     default 0.0.0.0:15021
  --socks5 <host:port>        enable the SOCKS5 outbound entry (e.g. 127.0.0.1:15080)
  --hbone-port <port>         default 15008
  --plaintext-inbound <l>=<d> plaintext listener l treated as addressed to d (loopback stand-in for 15006); repeatable
  --redirect none|bpf         bpf: transparent capture of enrolled pods (in-pod mode)   [FERRY_REDIRECT]
  --cgroup-root <dir>         with bpf: cgroup2 dir of this node's pods                 [FERRY_CGROUP_ROOT]
  --pin-root <dir>            with bpf: bpffs pin dir, default /sys/fs/bpf/ferry        [FERRY_PIN_ROOT]
  --redirect-state <file>     with bpf: enrollments kept across restarts                [FERRY_REDIRECT_STATE]
  --sidecar <workload uid>    sidecar mode: serve only this pod (its identity, its traffic); needs
                              --netns, --cgroup-root <pod cgroup>, --app-cgroup (repeatable), --pin-root
  --netns <path>              sidecar mode: the pod's network namespace
  --app-cgroup <dir>          sidecar mode: an application container's cgroup (captured); repeatable
  --enroll-from admin|kubernetes  who enrolls pods: the admin socket's POST/DELETE /pods (default), or the
                              node agent from the Kubernetes API (Pods of --node, Namespaces; Istio's
                              istio.io/dataplane-mode rules); implies --redirect bpf    [FERRY_ENROLL_FROM]
  --kubeconfig <file>         with kubernetes: kubeconfig; default KUBECONFIG, else in-cluster
  --host-proc <dir>           with kubernetes: the host's /proc (DaemonSet: /host/proc), default /proc [FERRY_HOST_PROC]
                              (--cgroup-root then defaults to kubepods.slice or kubepods under the cgroup2 mount)
  --pod-uid <uid>             with kubernetes: this ztunnel's own pod uid, exempt from the fail-closed guard
                              (DaemonSet: metadata.uid)                                  [FERRY_POD_UID]
  --drain-deadline-ms <ms>    default 5000
  --log-level <level>         error|warn|info|debug
`;

export async function run(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      config: { type: 'string' },
      node: { type: 'string' },
      network: { type: 'string' },
      'trust-domain': { type: 'string' },
      'cluster-id': { type: 'string' },
      'ca-address': { type: 'string' },
      'ca-root': { type: 'string' },
      'ca-token': { type: 'string' },
      'ca-token-file': { type: 'string' },
      'in-process-ca': { type: 'boolean' },
      'ca-dir': { type: 'string' },
      admin: { type: 'string' },
      'admin-socket': { type: 'string' },
      metrics: { type: 'string' },
      readiness: { type: 'string' },
      socks5: { type: 'string' },
      'hbone-port': { type: 'string' },
      'plaintext-inbound': { type: 'string', multiple: true },
      'xds-address': { type: 'string' },
      redirect: { type: 'string' },
      'cgroup-root': { type: 'string' },
      'pin-root': { type: 'string' },
      'redirect-state': { type: 'string' },
      sidecar: { type: 'string' },
      netns: { type: 'string' },
      'app-cgroup': { type: 'string', multiple: true },
      'enroll-from': { type: 'string' },
      'host-proc': { type: 'string' },
      'pod-uid': { type: 'string' },
      kubeconfig: { type: 'string' },
      'xds-root': { type: 'string' },
      'drain-deadline-ms': { type: 'string' },
      'log-level': { type: 'string' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  applyZtunnelGcTuning();
  const sidecar = values.sidecar === undefined ? null : parseSidecarFlags(values);
  // Sidecar mode opens its own redirector (on the app containers): the node-mode one stays off.
  const config = loadZtunnelConfig(sidecar === null ? values : { ...values, redirect: 'none' }, process.env);
  const bootLog = createLogger({ component: 'ztunnel' });
  const certificates = await createZtunnelCertificates(config.ca, config.trustDomain, bootLog);
  const zt =
    sidecar === null
      ? await startZtunnel(config, { certificates })
      : await startSidecar(config, sidecar, {
          certificates,
          // L7 client-side needs the routes, which only xDS carries (a config file has none).
          ...(config.configSource.kind === 'xds' ? { outboundL7: sidecarL7({ uid: sidecar.uid, certificates }) } : {}),
        });
  using _signals = installSignalHandlers({
    drain: zt.drain,
    drainDeadlineMs: config.drainDeadlineMs,
    logger: zt.logger,
    reload: () => {
      void zt.reload();
    },
  });
  const outcome = await zt.stopped;
  const code = outcome.forced && outcome.remaining > 0 ? 1 : 0;
  // Everything we own is closed; a handle Node still counts (a socket destroyed mid-teardown) must not keep
  // a drained proxy alive. Exit soon even then (unref'd: a clean loop exits on its own first).
  setTimeout(() => process.exit(code), 200).unref();
  return code;
}
