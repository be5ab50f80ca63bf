// `ferry controller --kubeconfig PATH | --source kubernetes [options]`: the arguments and environment of the
// controller on a Kubernetes API, parsed once (the only place this process reads its environment:
// KUBECONFIG, KUBERNETES_SERVICE_HOST for in-cluster config, POD_NAMESPACE / POD_NAME for the Lease).
// A bad value is a ConfigError naming the flag.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import type { KubernetesControllerOptions } from '../controller/kubernetes-controller.ts';
import type { Logger } from '../runtime/logger.ts';
import { ConfigError, parseHostPort } from '../runtime/process-config.ts';

export const KUBE_CONTROLLER_HELP = `usage: ferry controller --kubeconfig PATH | --source kubernetes [options]

Runs the controller on a Kubernetes API: watches it, serves delta xDS and the CA, and (the replica holding
the Lease) writes Gateway API status. Without --kubeconfig: KUBECONFIG, else the in-cluster service account.

  --kubeconfig PATH        kubeconfig to use
  --source kubernetes      use KUBECONFIG or the in-cluster config
  --xds-address H:P        delta xDS listen address (default 0.0.0.0:15010, plaintext)
  --ca-address H:P         CA listen address (default 0.0.0.0:15012, TLS)
  --ca-dir DIR             CA root in Istio's cacerts layout (shared by replicas); default: generated
  --node-tokens FILE       JSON {"<bearer token>": "<node name>"} of the node agents allowed at the CA
  --trust-domain TD        default cluster.local
  --lease-namespace NS     default $POD_NAMESPACE, else kube-system
  --lease-name NAME        default ferry-controller
  --identity ID            this replica in the Lease; default $POD_NAME, else the host name
  --no-status              never write status (this replica does not take part in the election)
  --log-level LEVEL        default info
`;

export interface KubeControllerArgs {
  readonly logLevel: string;
  readonly build: (log: Logger) => Promise<KubernetesControllerOptions>;
}

/** True when argv selects the Kubernetes source (--kubeconfig or --source kubernetes). */
export function wantsKubernetes(argv: readonly string[]): boolean {
  return argv.some(
    (a, i) =>
      a === '--kubeconfig' ||
      a.startsWith('--kubeconfig=') ||
      (a === '--source' && argv[i + 1] === 'kubernetes') ||
      a === '--source=kubernetes',
  );
}

export function parseKubeControllerArgs(argv: readonly string[], env: NodeJS.ProcessEnv): KubeControllerArgs | null {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      kubeconfig: { type: 'string' },
      source: { type: 'string' },
      'xds-address': { type: 'string', default: '0.0.0.0:15010' },
      'ca-address': { type: 'string', default: '0.0.0.0:15012' },
      'ca-dir': { type: 'string' },
      'node-tokens': { type: 'string' },
      'trust-domain': { type: 'string', default: 'cluster.local' },
      'lease-namespace': { type: 'string' },
      'lease-name': { type: 'string', default: 'ferry-controller' },
      identity: { type: 'string' },
      'no-status': { type: 'boolean' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  if (values.help === true) {
    process.stdout.write(KUBE_CONTROLLER_HELP);
    return null;
  }
  if (values.source !== undefined && values.source !== 'kubernetes') {
    throw new ConfigError(`--source: only "kubernetes" is accepted here, got ${JSON.stringify(values.source)}`);
  }
  const xds = parseHostPort(values['xds-address'], '--xds-address');
  const ca = parseHostPort(values['ca-address'], '--ca-address');
  const tokensFile = values['node-tokens'];
  return {
    logLevel: values['log-level'],
    build: async (log) => ({
      log,
      kube: {
        kubeconfigPath: values.kubeconfig ?? null,
        kubeconfigEnv: env.KUBECONFIG ?? null,
        inCluster: env.KUBERNETES_SERVICE_HOST !== undefined,
      },
      trustDomain: values['trust-domain'],
      xds: { host: xds.host, port: xds.port },
      ca: {
        host: ca.host,
        port: ca.port,
        dir: values['ca-dir'] ?? null,
        nodeTokens: tokensFile === undefined ? new Map() : await readNodeTokens(tokensFile),
      },
      lease: {
        namespace: values['lease-namespace'] ?? env.POD_NAMESPACE ?? 'kube-system',
        name: values['lease-name'],
        identity: values.identity ?? env.POD_NAME ?? hostname(),
      },
      writeStatus: values['no-status'] !== true,
    }),
  };
}

async function readNodeTokens(file: string): Promise<Map<string, string>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`--node-tokens ${file}: not readable JSON (${(err as Error).name})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`--node-tokens ${file}: expected an object {"<token>": "<node>"}`);
  }
  const out = new Map<string, string>();
  for (const [token, node] of Object.entries(parsed)) {
    if (typeof node !== 'string' || node === '' || token === '') {
      throw new ConfigError(`--node-tokens ${file}: every entry must map a token to a node name`);
    }
    out.set(token, node);
  }
  return out;
}
