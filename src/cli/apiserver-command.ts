// `ferry apiserver`: runs the local Kubernetes API server as its own process (docs/operations.md, "Local
// Kubernetes API server"): HTTPS on loopback, a bearer token, state in --data-dir, a kubeconfig for kubectl.
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { ApiServerError } from '../local-cluster/apiserver/errors.ts';
import { startApiServer } from '../local-cluster/apiserver/server.ts';
import {
  parseSidecarInjectionValues,
  type SidecarInjectionValues,
} from '../local-cluster/apiserver/sidecar-admission.ts';
import { startPodGatewayRelay } from '../local-cluster/pod-gateway-relay.ts';
import { DrainController } from '../runtime/drain.ts';
import { createLogger } from '../runtime/logger.ts';
import { installSignalHandlers } from '../runtime/signals.ts';

const HELP = `usage: ferry apiserver --data-dir DIR [options]

  --data-dir <dir>          state (write-ahead log, snapshot, certificates, token); created 0700
  --host <addr>             listen address (default 127.0.0.1; keep it on loopback)
  --port <n>                listen port (default 6443; 0 picks a free one)
  --kubeconfig-out <file>   write a kubeconfig for kubectl here (0600)
  --cluster-name <name>     cluster/context name in the kubeconfig (default ferry)
  --preinstall-crds         create the Istio and Gateway API CRDs Ferry reads, if missing
  --max-watch-seconds <n>   end every watch after n seconds (default 1800; clients resume)
  --graceful-pod-deletion   a DELETE of a bound pod only marks it; its node's kubelet removes it
                            (ferry up --bare runs kubelets; without one marked pods would stay)
  --sidecar-injection <file> inject Ferry's sidecar into selected pods on CREATE, as Istio's webhook
                            does; the file is JSON: image, trustDomain, xdsAddress, caAddress,
                            caAudience, rootCertConfigMap (ferry up --api writes it)
  --pod-gateway <netns>=<addr>
                            also serve pods at <addr>:<port> inside the netns <netns> (a path): a
                            relay to the loopback listener, <addr> added to the serving certificate
`;

export async function run(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      'data-dir': { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '6443' },
      'kubeconfig-out': { type: 'string' },
      'cluster-name': { type: 'string', default: 'ferry' },
      'preinstall-crds': { type: 'boolean', default: false },
      'max-watch-seconds': { type: 'string' },
      'graceful-pod-deletion': { type: 'boolean', default: false },
      'sidecar-injection': { type: 'string' },
      'pod-gateway': { type: 'string' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const dataDir = values['data-dir'];
  if (dataDir === undefined || dataDir === '')
    throw new ApiServerError('FERRY_APISERVER_BAD_OPTION', '--data-dir is required');
  const port = integer(values.port, '--port', 0, 65535);
  const maxWatchSeconds =
    values['max-watch-seconds'] === undefined
      ? undefined
      : integer(values['max-watch-seconds'], '--max-watch-seconds', 1, 86_400);
  const sidecarFile = values['sidecar-injection'];
  const sidecarInjection = sidecarFile === undefined ? undefined : await readSidecarInjection(sidecarFile);
  const podGateway = values['pod-gateway'] === undefined ? null : parsePodGateway(values['pod-gateway']);
  const logger = createLogger({ component: 'apiserver' });
  const server = await startApiServer({
    dataDir,
    host: values.host,
    ...(podGateway === null ? {} : { extraCertHosts: [podGateway.address] }),
    port,
    log: logger,
    clusterName: values['cluster-name'],
    preinstallCrds: values['preinstall-crds'],
    gracefulPodDeletion: values['graceful-pod-deletion'],
    ...(values['kubeconfig-out'] === undefined ? {} : { kubeconfigPath: values['kubeconfig-out'] }),
    ...(maxWatchSeconds === undefined ? {} : { maxWatchSeconds }),
    ...(sidecarInjection === undefined ? {} : { sidecarInjection }),
  });
  // In-cluster clients in pods (KUBERNETES_SERVICE_HOST = the gateway) reach the loopback listener here.
  const relay =
    podGateway === null
      ? null
      : await startPodGatewayRelay({
          netnsPath: podGateway.netnsPath,
          address: podGateway.address,
          routes: [{ port: server.port, target: { host: values.host, port: server.port } }],
          log: logger.child({ scope: 'pod-gateway' }),
        }).catch(async (err: unknown) => {
          await server.close();
          throw err;
        });
  const drain = new DrainController();
  using _signals = installSignalHandlers({ drain, drainDeadlineMs: 0, logger });
  await new Promise((resolve) => drain.signal.addEventListener('abort', resolve, { once: true }));
  await relay?.close();
  await server.close();
  logger.info({}, 'API server stopped');
  logger.flush();
  return 0;
}

function parsePodGateway(text: string): { netnsPath: string; address: string } {
  const eq = text.lastIndexOf('=');
  const netnsPath = text.slice(0, eq);
  const address = text.slice(eq + 1);
  if (eq <= 0 || !netnsPath.startsWith('/') || isIP(address) !== 4) {
    throw new ApiServerError(
      'FERRY_APISERVER_BAD_OPTION',
      `--pod-gateway: expected <netns path>=<IPv4 address>, got ${JSON.stringify(text)}`,
    );
  }
  return { netnsPath, address };
}

function integer(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n < min || n > max) {
    throw new ApiServerError(
      'FERRY_APISERVER_BAD_OPTION',
      `${flag}: expected an integer ${min}..${max}, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}

async function readSidecarInjection(file: string): Promise<SidecarInjectionValues> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ApiServerError('FERRY_APISERVER_BAD_OPTION', `--sidecar-injection: cannot read ${file}: ${String(err)}`);
  }
  const parsed = parseSidecarInjectionValues(text);
  if (typeof parsed === 'string') {
    throw new ApiServerError('FERRY_APISERVER_BAD_OPTION', `--sidecar-injection ${file}: ${parsed}`);
  }
  return parsed;
}
