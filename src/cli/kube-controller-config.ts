// `ferry controller --kubeconfig PATH | --source kubernetes [options]`: the arguments and environment of the
// controller on a Kubernetes API, parsed once (the only place this process reads its environment:
// KUBECONFIG, KUBERNETES_SERVICE_HOST for in-cluster config, POD_NAMESPACE / POD_NAME for the Lease, the
// CA Secret and the trust-bundle ConfigMap). A bad value is a ConfigError naming the flag.
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { parseServiceAccountRef } from '../controller/ca-token-review.ts';
import type { KubernetesControllerOptions } from '../controller/kubernetes-controller.ts';
import { parseWaypointTemplate, type WaypointTemplate } from '../controller/waypoint-template.ts';
import type { Logger } from '../runtime/logger.ts';
import { ConfigError, type HostPort, parseHostPort } from '../runtime/process-config.ts';

export const KUBE_CONTROLLER_HELP = `usage: ferry controller --kubeconfig PATH | --source kubernetes [options]

Runs the controller on a Kubernetes API: watches it, serves delta xDS and the CA, and (the replica holding
the Lease) writes Gateway API status. Without --kubeconfig: KUBECONFIG, else the in-cluster service account.

  --kubeconfig PATH        kubeconfig to use
  --source kubernetes      use KUBECONFIG or the in-cluster config
  --xds-address H:P        delta xDS listen address (default 0.0.0.0:15010, TLS)
  --ca-address H:P         CA listen address (default 0.0.0.0:15012, TLS)
  --tls-dns-names A,B      DNS SANs of the xDS and CA certificates (what clients dial); localhost always
  --tls-ip-addresses A,B   IP SANs of those certificates (clients that dial an address)
  --cluster-domain D       Service hostnames <svc>.<ns>.svc.D (default cluster.local)
  --ca-dir DIR             CA root in Istio's cacerts layout (shared by replicas)
  --ca-secret NAME         else: the root in this Secret in $POD_NAMESPACE, generated and created if
                           missing (shared by replicas); neither: generated per replica
  --node-tokens FILE       JSON {"<bearer token>": "<node name>"} of the node agents allowed at the CA
  --ca-token-audience AUD  authenticate CA callers by TokenReview of their projected ServiceAccount
                           token for this audience (needs --ztunnel-service-account, or --node-tokens:
                           then node tokens are tried first and reviewed callers get their own identity)
  --ztunnel-service-account NS/NAME
                           the only caller that may request other identities (pods on its token's node)
  --trust-domain TD        default cluster.local
  --lease-namespace NS     default $POD_NAMESPACE, else kube-system
  --lease-name NAME        default ferry-controller
  --identity ID            this replica in the Lease; default $POD_NAME, else the host name
  --no-status              never write status (this replica does not take part in the election)
  --root-cert-configmap N  the leader writes the trust bundle as ConfigMap N (key root-cert.pem) in
                           $POD_NAMESPACE and in each namespace with a ferry-waypoint Gateway
  --waypoint-template FILE the leader creates each ferry-waypoint Gateway's objects from FILE
  --admin H:P              admin server (default 127.0.0.1:15000)
  --metrics H:P            Prometheus metrics (default 0.0.0.0:15020)
  --readiness H:P          /healthz/ready (informers synced, CA loaded) and /healthz/live (default 0.0.0.0:15021)
  --log-level LEVEL        default info
`;

export interface KubeControllerArgs {
  readonly logLevel: string;
  readonly servers: { readonly admin: HostPort; readonly metrics: HostPort; readonly readiness: HostPort };
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
      'ca-secret': { type: 'string' },
      'tls-dns-names': { type: 'string' },
      'tls-ip-addresses': { type: 'string' },
      'cluster-domain': { type: 'string', default: 'cluster.local' },
      'root-cert-configmap': { type: 'string' },
      'waypoint-template': { type: 'string' },
      admin: { type: 'string', default: '127.0.0.1:15000' },
      metrics: { type: 'string', default: '0.0.0.0:15020' },
      readiness: { type: 'string', default: '0.0.0.0:15021' },
      'node-tokens': { type: 'string' },
      'ca-token-audience': { type: 'string' },
      'ztunnel-service-account': { type: 'string' },
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
  const tokenReview = parseTokenReviewFlags(values['ca-token-audience'], values['ztunnel-service-account'], tokensFile);
  if (values['ca-dir'] !== undefined && values['ca-secret'] !== undefined) {
    throw new ConfigError('--ca-dir and --ca-secret: choose one source of the CA root');
  }
  const tlsDnsNames = parseDnsNames(values['tls-dns-names']);
  const tlsIpAddresses = parseIpAddresses(values['tls-ip-addresses']);
  const clusterDomain = parseName(values['cluster-domain'], '--cluster-domain');
  const namespace = values['lease-namespace'] ?? env.POD_NAMESPACE ?? 'kube-system';
  const templateFile = values['waypoint-template'];
  const caSecret = values['ca-secret'] === undefined ? null : parseName(values['ca-secret'], '--ca-secret');
  const rootCertConfigMap =
    values['root-cert-configmap'] === undefined
      ? null
      : parseName(values['root-cert-configmap'], '--root-cert-configmap');
  return {
    logLevel: values['log-level'],
    servers: {
      admin: parseHostPort(values.admin, '--admin'),
      metrics: parseHostPort(values.metrics, '--metrics'),
      readiness: parseHostPort(values.readiness, '--readiness'),
    },
    build: async (log) => ({
      log,
      kube: {
        kubeconfigPath: values.kubeconfig ?? null,
        kubeconfigEnv: env.KUBECONFIG ?? null,
        inCluster: env.KUBERNETES_SERVICE_HOST !== undefined,
        serviceAccountDir: env.FERRY_SERVICEACCOUNT_DIR ?? null,
      },
      trustDomain: values['trust-domain'],
      clusterDomain,
      namespace: env.POD_NAMESPACE ?? namespace,
      tlsDnsNames,
      tlsIpAddresses,
      xds: { host: xds.host, port: xds.port },
      ca: {
        host: ca.host,
        port: ca.port,
        dir: values['ca-dir'] ?? null,
        secretName: caSecret,
        nodeTokens: tokensFile === undefined ? new Map() : await readNodeTokens(tokensFile),
        tokenReview,
      },
      rootCertConfigMap,
      waypointTemplate: templateFile === undefined ? null : await readWaypointTemplate(templateFile),
      lease: {
        namespace,
        name: values['lease-name'],
        identity: values.identity ?? env.POD_NAME ?? hostname(),
      },
      writeStatus: values['no-status'] !== true,
    }),
  };
}

function parseTokenReviewFlags(
  audience: string | undefined,
  ztunnel: string | undefined,
  tokensFile: string | undefined,
): NonNullable<NonNullable<KubernetesControllerOptions['ca']>['tokenReview']> | null {
  if (audience === undefined) {
    if (ztunnel !== undefined) throw new ConfigError('--ztunnel-service-account: needs --ca-token-audience');
    return null;
  }
  if (audience === '') throw new ConfigError('--ca-token-audience: must not be empty');
  if (ztunnel === undefined) {
    // With node tokens the node agents authenticate by those; reviewed callers get only their own identity.
    if (tokensFile !== undefined) return { audience, ztunnelServiceAccount: null };
    throw new ConfigError(
      '--ca-token-audience: needs --ztunnel-service-account NS/NAME (the node agents), or --node-tokens',
    );
  }
  if (tokensFile !== undefined) {
    throw new ConfigError('--ztunnel-service-account and --node-tokens: choose one way to authenticate node agents');
  }
  const ref = parseServiceAccountRef(ztunnel);
  if (ref === null) {
    throw new ConfigError(`--ztunnel-service-account: expected NAMESPACE/NAME, got ${JSON.stringify(ztunnel)}`);
  }
  return { audience, ztunnelServiceAccount: ref };
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

const DNS_NAME_RE = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

function parseDnsNames(text: string | undefined): string[] {
  if (text === undefined) return [];
  const names = text.split(',').map((n) => n.trim());
  for (const n of names) {
    if (!DNS_NAME_RE.test(n)) throw new ConfigError(`--tls-dns-names: ${JSON.stringify(n)} is not a DNS name`);
  }
  return names;
}

function parseIpAddresses(text: string | undefined): string[] {
  if (text === undefined) return [];
  const ips = text.split(',').map((n) => n.trim());
  for (const ip of ips) {
    if (isIP(ip) === 0) throw new ConfigError(`--tls-ip-addresses: ${JSON.stringify(ip)} is not an IP address`);
  }
  return ips;
}

/** A Kubernetes object name or a DNS domain (lowercase DNS labels joined by dots). */
function parseName(text: string, flag: string): string {
  if (!DNS_NAME_RE.test(text)) throw new ConfigError(`${flag}: ${JSON.stringify(text)} is not a valid name`);
  return text;
}

async function readWaypointTemplate(file: string): Promise<WaypointTemplate> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `--waypoint-template ${file}: not readable (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  return parseWaypointTemplate(text, file);
}
