// `--ca-secret`: the CA root every controller replica shares when no plug-in `--ca-dir` is mounted. The
// root lives in a Secret in Istio's `cacerts` layout (ca-cert.pem, ca-key.pem, root-cert.pem,
// cert-chain.pem) in the controller's namespace. The first replica to find none generates a root and
// creates the Secret; a replica that loses that race (409 AlreadyExists) reads and uses the winner's, so
// all replicas sign under one root. Needs only `get` and `create` on that one Secret (chart RBAC).
import { CertificateAuthority } from '../identity/ca.ts';
import type { PluginPem } from '../identity/ca-plugin.ts';
import { isJson, type Json, type KubeClient } from '../kube/client.ts';
import { KubeError } from '../kube/errors.ts';
import type { Logger } from '../runtime/logger.ts';
import { ControllerError } from './errors.ts';

export interface CaSecretOptions {
  readonly client: KubeClient;
  readonly namespace: string;
  readonly name: string;
  readonly trustDomain: string;
  readonly log: Logger;
}

const KEYS = {
  caCertPem: 'ca-cert.pem',
  caKeyPem: 'ca-key.pem',
  rootCertPem: 'root-cert.pem',
  certChainPem: 'cert-chain.pem',
} as const satisfies Record<keyof PluginPem, string>;

/** The CA from the Secret, creating the Secret with a generated root when there is none. */
export async function loadOrCreateCaSecret(opts: CaSecretOptions): Promise<CertificateAuthority> {
  const path = `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/secrets/${encodeURIComponent(opts.name)}`;
  const where = `Secret ${opts.namespace}/${opts.name}`;
  const existing = await getOrNull(opts.client, path);
  if (existing !== null) return caFromSecret(existing, where, opts.trustDomain);
  const generated = await CertificateAuthority.generatePluginPem({ trustDomain: opts.trustDomain });
  try {
    await opts.client.request('POST', `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/secrets`, {
      json: secretOf(opts, generated),
    });
    opts.log.info({ secret: `${opts.namespace}/${opts.name}` }, 'generated a CA root and stored it');
    return CertificateAuthority.fromPluginPem(generated, { trustDomain: opts.trustDomain });
  } catch (err) {
    if (!(err instanceof KubeError && err.status === 409)) throw err;
    // Another replica created it first: its root is the one everybody uses.
    opts.log.info({ secret: `${opts.namespace}/${opts.name}` }, 'another replica stored the CA root first: using it');
    return caFromSecret(await opts.client.get(path), where, opts.trustDomain);
  }
}

async function getOrNull(client: KubeClient, path: string): Promise<Json | null> {
  try {
    return await client.get(path);
  } catch (err) {
    if (err instanceof KubeError && err.status === 404) return null;
    throw err;
  }
}

async function caFromSecret(secret: Json, where: string, trustDomain: string): Promise<CertificateAuthority> {
  const data = isJson(secret.data) ? secret.data : {};
  const text = (key: string): string => {
    const v = data[key];
    if (typeof v !== 'string' || v === '') {
      throw new ControllerError('FERRY_CONTROLLER_CA_SECRET_INVALID', `${where}: no data key ${key}`);
    }
    return Buffer.from(v, 'base64').toString('utf8');
  };
  const pem: PluginPem = {
    caCertPem: text(KEYS.caCertPem),
    caKeyPem: text(KEYS.caKeyPem),
    rootCertPem: text(KEYS.rootCertPem),
    certChainPem: text(KEYS.certChainPem),
  };
  try {
    return await CertificateAuthority.fromPluginPem(pem, { trustDomain });
  } catch (err) {
    throw new ControllerError('FERRY_CONTROLLER_CA_SECRET_INVALID', `${where}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function secretOf(opts: CaSecretOptions, pem: PluginPem): Json {
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: opts.name,
      namespace: opts.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'ferry-controller' },
    },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(KEYS).map(([field, key]) => [key, b64(pem[field as keyof PluginPem])])),
  };
}
