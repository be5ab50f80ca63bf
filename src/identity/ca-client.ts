// Client of the CA's CreateCertificate (istio/ztunnel src/identity/caclient.rs's role): makes a fresh P-256
// key and CSR per request, sends it over TLS (CA verified with the trust bundle) with a bearer token and
// ImpersonatedIdentity, and checks the answer before anyone uses it: the leaf carries exactly the requested
// identity and our key, and the chain links to a root of the bundle. The private key never leaves here
// except inside the returned WorkloadCertificate. Roots from a file are re-read on every fetch (a rotated
// root-cert.pem is picked up at the next renewal).
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { encodeCertificateRequest, loadCaServiceDefinition, parseCertificateResponse } from './ca-grpc.ts';
import type { CertificateSource } from './cert-manager.ts';
import { createCsr } from './csr-request.ts';
import { IdentityError } from './errors.ts';
import { formatSpiffeId, type SpiffeId } from './spiffe-id.ts';
import type { WorkloadCertificate } from './workload-certificate.ts';

const DEFAULT_TTL_SECONDS = 24 * 3600;
const DEFAULT_TIMEOUT_MS = 10_000;

export type CaRoots = { readonly pem: readonly string[] } | { readonly file: string };

export interface CaClientOptions {
  /** gRPC target `host:port` of the CA (the controller, port 15012). */
  readonly address: string;
  /** Trust bundle for the CA's TLS certificate and for issued chains. */
  readonly roots: CaRoots;
  /** Bearer token (or a getter, for projected tokens that rotate). */
  readonly token?: string | (() => string | Promise<string>);
  /** Name to verify in the CA's certificate when `address` is not one of its SANs. */
  readonly serverName?: string;
  /** Requested validity (default 24h). */
  readonly ttlSeconds?: number;
  /** Send ImpersonatedIdentity (default true: a node proxy asks on behalf of its pods). */
  readonly impersonate?: boolean;
  /** Deadline per CreateCertificate call (default 10s). */
  readonly timeoutMs?: number;
}

export class CaClient implements CertificateSource {
  #opts: CaClientOptions;
  #method: grpc.MethodDefinition<Record<string, unknown>, unknown>;
  #client: { rootsKey: string; roots: readonly string[]; grpc: grpc.Client } | null = null;
  #closed = false;

  private constructor(opts: CaClientOptions, method: grpc.MethodDefinition<Record<string, unknown>, unknown>) {
    this.#opts = opts;
    this.#method = method;
  }

  static async create(opts: CaClientOptions): Promise<CaClient> {
    const def = await loadCaServiceDefinition();
    const method = def.CreateCertificate as grpc.MethodDefinition<Record<string, unknown>, unknown> | undefined;
    if (method === undefined) throw new Error('CreateCertificate missing from the CA service definition');
    return new CaClient(opts, method);
  }

  /** Requests a certificate for `identity`. Rejects with IdentityError FERRY_CA_*. */
  async fetch(identity: SpiffeId): Promise<WorkloadCertificate> {
    if (this.#closed) throw new IdentityError('FERRY_CA_UNREACHABLE', 'CA client is closed');
    const { client, roots } = await this.#connection();
    const csr = await createCsr(identity);
    const id = formatSpiffeId(identity);
    const metadata = new grpc.Metadata();
    const token = await this.#token();
    if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
    const request = encodeCertificateRequest({
      csrPem: csr.csrPem,
      validitySeconds: this.#opts.ttlSeconds ?? DEFAULT_TTL_SECONDS,
      impersonatedIdentity: this.#opts.impersonate === false ? undefined : id,
    });
    const response = await new Promise<unknown>((resolve, reject) => {
      const deadline = Date.now() + (this.#opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      client.makeUnaryRequest(
        this.#method.path,
        this.#method.requestSerialize,
        this.#method.responseDeserialize,
        request,
        metadata,
        { deadline },
        (err, value) => (err ? reject(callError(err, id)) : resolve(value)),
      );
    });
    return checkResponse(response, identity, csr.publicKeySpki, csr.privateKeyPem, roots);
  }

  close(): void {
    this.#closed = true;
    this.#client?.grpc.close();
    this.#client = null;
  }

  async #connection(): Promise<{ client: grpc.Client; roots: readonly string[] }> {
    const roots = await readRoots(this.#opts.roots);
    const rootsKey = roots.join('\n');
    if (this.#client === null || this.#client.rootsKey !== rootsKey) {
      this.#client?.grpc.close();
      const options: grpc.ClientOptions = {};
      if (this.#opts.serverName !== undefined) {
        options['grpc.ssl_target_name_override'] = this.#opts.serverName;
        options['grpc.default_authority'] = this.#opts.serverName;
      }
      const creds = grpc.credentials.createSsl(Buffer.from(rootsKey));
      this.#client = { rootsKey, roots, grpc: new grpc.Client(this.#opts.address, creds, options) };
    }
    return { client: this.#client.grpc, roots: this.#client.roots };
  }

  async #token(): Promise<string | undefined> {
    const t = this.#opts.token;
    return typeof t === 'function' ? await t() : t;
  }
}

async function readRoots(roots: CaRoots): Promise<readonly string[]> {
  if ('pem' in roots) return roots.pem;
  let text: string;
  try {
    text = await readFile(roots.file, 'utf8');
  } catch (err) {
    throw new IdentityError('FERRY_CA_UNREACHABLE', `CA root file ${roots.file} cannot be read`, { cause: err });
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    throw new IdentityError('FERRY_CA_UNREACHABLE', `CA root file ${roots.file} holds no PEM certificate`);
  }
  return blocks.map((b) => `${b}\n`);
}

function callError(err: grpc.ServiceError, id: string): IdentityError {
  const unreachable =
    err.code === grpc.status.UNAVAILABLE ||
    err.code === grpc.status.DEADLINE_EXCEEDED ||
    err.code === grpc.status.CANCELLED;
  const code = unreachable ? 'FERRY_CA_UNREACHABLE' : 'FERRY_CA_REQUEST_REFUSED';
  const what = unreachable ? 'CA unreachable' : 'CA refused';
  return new IdentityError(code, `${what} for ${id} (${grpc.status[err.code]}): ${err.details}`, { cause: err });
}

/** Checks the CA's answer: PEM chain, leaf = requested identity + our key, links to a bundle root. */
async function checkResponse(
  response: unknown,
  identity: SpiffeId,
  publicKeySpki: Buffer,
  privateKeyPem: string,
  rootsPem: readonly string[],
): Promise<WorkloadCertificate> {
  const id = formatSpiffeId(identity);
  const chainPem = parseCertificateResponse(response);
  if (chainPem === null || chainPem.length === 0) {
    throw new IdentityError('FERRY_CA_RESPONSE_INVALID', `CA answered ${id} with an empty certificate chain`);
  }
  let chain: X509Certificate[];
  try {
    chain = chainPem.map((pem) => new X509Certificate(pem));
  } catch (err) {
    throw new IdentityError('FERRY_CA_RESPONSE_INVALID', `CA answered ${id} with a chain that does not parse`, {
      cause: err,
    });
  }
  const leaf = chain[0] as X509Certificate;
  if (leaf.subjectAltName !== `URI:${id}`) {
    throw new IdentityError(
      'FERRY_CA_RESPONSE_IDENTITY_MISMATCH',
      `CA answered ${id} with a certificate for ${leaf.subjectAltName ?? 'no SAN'}`,
    );
  }
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(publicKeySpki)) {
    throw new IdentityError('FERRY_CA_RESPONSE_INVALID', `CA answered ${id} with a certificate for another key`);
  }
  const roots = rootsPem.map((pem) => new X509Certificate(pem));
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i] as X509Certificate;
    if (!child.verify((chain[i + 1] as X509Certificate).publicKey)) {
      throw new IdentityError(
        'FERRY_CA_RESPONSE_INVALID',
        `CA chain for ${id}: certificate #${i} is not signed by #${i + 1}`,
      );
    }
  }
  // The response ends with the root; a workload presents leaf + intermediates only (workload-certificate.ts).
  const isRoot = (c: X509Certificate): boolean => roots.some((r) => r.raw.equals(c.raw));
  const presented = chain.filter((c) => !isRoot(c));
  const top = presented[presented.length - 1] ?? leaf;
  if (!roots.some((r) => top.checkIssued(r) && top.verify(r.publicKey))) {
    throw new IdentityError(
      'FERRY_CA_RESPONSE_INVALID',
      `CA chain for ${id} does not lead to a root of the trust bundle`,
    );
  }
  return {
    identity,
    privateKeyPem,
    certChainPem: presented.map((c) => c.toString()),
    rootsPem: [...rootsPem],
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
  };
}
