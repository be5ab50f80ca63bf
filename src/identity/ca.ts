// Ferry's SPIFFE CA: holds the signing key (a generated self-signed root, or Istio's plug-in cacerts) and
// signs validated CSRs into SVIDs. Invariants: every issued leaf has an ECDSA P-256 key, exactly one URI SAN
// in this CA's trust domain and no CN; every returned chain is leaf-first and ends with a root (Istio's
// response shape). Policy lives in ca-policy.ts (pure), CSR parsing in csr.ts; this module never decides
// *who* may ask (that is ca-server.ts's authorizer) and never logs.

import { loadPluginMaterial, type PluginPem, parsePluginMaterial, type SigningMaterial } from './ca-plugin.ts';
import { DEFAULT_SVID_TTL_MS, type IssuePlan, type IssuePolicy, MAX_SVID_TTL_MS, planIssue } from './ca-policy.ts';
import { type ParsedCsr, parseCsr } from './csr.ts';
import { fail, ok, type Result } from './errors.ts';
import { type SpiffeId, validateTrustDomain } from './spiffe-id.ts';
import {
  createSelfSignedRoot,
  createServingCertificate,
  createSvid,
  ECDSA_SHA256,
  generateP256KeyPair,
  privateKeyToPem,
} from './x509.ts';

const DAY_MS = 24 * 3600_000;
/** A generated root lives 10 years, like Istio's self-signed root (citadel's default). */
export const DEFAULT_ROOT_TTL_MS = 3650 * DAY_MS;
/** The CA's own gRPC serving certificate; re-issued at every start, so one year is plenty. */
const SERVING_CERT_TTL_MS = 365 * DAY_MS;

export interface CaOptions {
  readonly trustDomain: string;
  /** Validity when the request asks for none (default 24h). */
  readonly defaultTtlMs?: number;
  /** Longest validity issued; longer requests are clamped (default 90 days). */
  readonly maxTtlMs?: number;
  /** Injected clock (ms since epoch), for tests. */
  readonly now?: () => number;
}

export interface GenerateCaOptions extends CaOptions {
  readonly rootTtlMs?: number;
}

export interface SignRequest {
  readonly csrPem: string;
  /** Raw `ImpersonatedIdentity` metadata, if present: the CSR's SAN must equal it. */
  readonly impersonatedIdentity?: string | undefined;
  /** Requested validity in seconds (IstioCertificateRequest.validity_duration); 0 = default. */
  readonly ttlSeconds?: number;
}

export interface IssuedSvid {
  readonly identity: SpiffeId;
  /** Leaf first, then intermediates, ending with the root. */
  readonly certChainPem: readonly string[];
  /** Hex serial of the leaf, for logs. */
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** A request that passed CSR validation and policy: what will be signed. */
export interface PreparedIssue {
  readonly identity: SpiffeId;
  readonly csr: ParsedCsr;
  readonly plan: IssuePlan;
}

export interface ServingCertificate {
  readonly certChainPem: readonly string[];
  readonly privateKeyPem: string;
}

export class CertificateAuthority {
  readonly trustDomain: string;
  #material: SigningMaterial;
  #policy: IssuePolicy;
  #now: () => number;

  private constructor(material: SigningMaterial, opts: CaOptions) {
    this.trustDomain = opts.trustDomain;
    this.#material = material;
    this.#now = opts.now ?? Date.now;
    const maxTtlMs = opts.maxTtlMs ?? MAX_SVID_TTL_MS;
    this.#policy = {
      trustDomain: opts.trustDomain,
      maxTtlMs,
      defaultTtlMs: Math.min(opts.defaultTtlMs ?? DEFAULT_SVID_TTL_MS, maxTtlMs),
    };
  }

  /** A CA with a freshly generated self-signed P-256 root, O=<trust domain> (Istio's self-signed CA). */
  static async generate(opts: GenerateCaOptions): Promise<CertificateAuthority> {
    checkOptions(opts);
    const { root, keys } = await generateRoot(opts);
    const rootPem = root.toString('pem');
    const material: SigningMaterial = {
      signingCert: root,
      signingKey: keys.privateKey,
      signingAlgorithm: ECDSA_SHA256,
      chainPem: [rootPem],
      rootsPem: [rootPem],
    };
    return new CertificateAuthority(material, opts);
  }

  /**
   * A generated root as Istio's plug-in layout (ca-cert = root-cert = cert-chain, and the key), so it can
   * be stored (a Secret) and loaded by every replica with fromPluginPem().
   */
  static async generatePluginPem(opts: GenerateCaOptions): Promise<PluginPem> {
    checkOptions(opts);
    const { root, keys } = await generateRoot(opts);
    const rootPem = root.toString('pem');
    return {
      caCertPem: rootPem,
      caKeyPem: await privateKeyToPem(keys.privateKey),
      rootCertPem: rootPem,
      certChainPem: rootPem,
    };
  }

  /** A CA from the plug-in layout's four texts. Throws IdentityError FERRY_CA_PLUGIN_* naming key and problem. */
  static async fromPluginPem(pem: PluginPem, opts: CaOptions): Promise<CertificateAuthority> {
    checkOptions(opts);
    return new CertificateAuthority(await parsePluginMaterial(pem, (opts.now ?? Date.now)()), opts);
  }

  /** A CA from Istio's plug-in layout in `dir`. Throws IdentityError FERRY_CA_PLUGIN_* naming file and problem. */
  static async loadPluggedIn(dir: string, opts: CaOptions): Promise<CertificateAuthority> {
    checkOptions(opts);
    const material = await loadPluginMaterial(dir, (opts.now ?? Date.now)());
    return new CertificateAuthority(material, opts);
  }

  /** The trust bundle: root certificates (PEM) that workloads must trust. */
  trustBundlePem(): readonly string[] {
    return this.#material.rootsPem;
  }

  /** Validates a CSR against policy and signs it. Refusals are values naming what was wrong. */
  async sign(req: SignRequest): Promise<Result<IssuedSvid>> {
    const prepared = await this.prepare(req);
    return prepared.ok ? this.issue(prepared.value) : prepared;
  }

  /**
   * The validation half of sign(): parses the CSR and applies the issuing policy without signing, so a
   * server can authorize the resulting identity before spending the CA key on it.
   */
  async prepare(req: SignRequest): Promise<Result<PreparedIssue>> {
    const csr = await parseCsr(req.csrPem);
    if (!csr.ok) return csr;
    const plan = planIssue(
      { csr: csr.value, impersonatedIdentity: req.impersonatedIdentity, requestedTtlSeconds: req.ttlSeconds ?? 0 },
      this.#policy,
      this.#now(),
    );
    if (!plan.ok) return plan;
    return ok({ identity: plan.value.identity, csr: csr.value, plan: plan.value });
  }

  /** The signing half of sign(), for a request prepare() accepted. */
  async issue(prepared: PreparedIssue): Promise<Result<IssuedSvid>> {
    const { plan, csr } = prepared;
    const m = this.#material;
    try {
      const leaf = await createSvid({
        identity: plan.identity,
        subjectPublicKey: csr.publicKey,
        issuerCertificate: m.signingCert,
        issuerKey: m.signingKey,
        signingAlgorithm: m.signingAlgorithm,
        notBefore: plan.notBefore,
        notAfter: plan.notAfter,
      });
      return ok({
        identity: plan.identity,
        certChainPem: [leaf.toString('pem'), ...m.chainPem],
        serialNumber: leaf.serialNumber,
        notBefore: plan.notBefore,
        notAfter: plan.notAfter,
      });
    } catch (err) {
      return fail(
        'FERRY_CA_SIGNING_FAILED',
        `signing failed: ${err instanceof Error ? err.message : String(err)}`,
        err,
      );
    }
  }

  /** A TLS server certificate for the CA's own endpoint, issued by this CA (clients verify it with the root). */
  async issueServingCertificate(names: {
    readonly dnsNames?: readonly string[];
    readonly ipAddresses?: readonly string[];
  }): Promise<ServingCertificate> {
    const dnsNames = names.dnsNames ?? [];
    const ipAddresses = names.ipAddresses ?? [];
    if (dnsNames.length + ipAddresses.length === 0) {
      throw new TypeError('issueServingCertificate needs at least one DNS name or IP address');
    }
    const now = this.#now();
    const keys = await generateP256KeyPair();
    const m = this.#material;
    const cert = await createServingCertificate({
      subjectPublicKey: keys.publicKey,
      issuerCertificate: m.signingCert,
      issuerKey: m.signingKey,
      signingAlgorithm: m.signingAlgorithm,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + SERVING_CERT_TTL_MS),
      dnsNames,
      ipAddresses,
    });
    // The root stays out of a TLS chain: the peer has it already.
    const intermediates = m.chainPem.filter((pem) => !m.rootsPem.includes(pem));
    return {
      certChainPem: [cert.toString('pem'), ...intermediates],
      privateKeyPem: await privateKeyToPem(keys.privateKey),
    };
  }
}

async function generateRoot(opts: GenerateCaOptions) {
  const now = (opts.now ?? Date.now)();
  const keys = await generateP256KeyPair();
  const root = await createSelfSignedRoot({
    keys,
    commonName: `Ferry root CA (${opts.trustDomain})`,
    organization: opts.trustDomain,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (opts.rootTtlMs ?? DEFAULT_ROOT_TTL_MS)),
  });
  return { root, keys };
}

function checkOptions(opts: CaOptions): void {
  const tdError = validateTrustDomain(opts.trustDomain);
  if (tdError !== null) throw new TypeError(`CA trust domain: ${tdError}`);
  for (const [name, v] of [
    ['defaultTtlMs', opts.defaultTtlMs],
    ['maxTtlMs', opts.maxTtlMs],
  ] as const) {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new TypeError(`CA ${name} must be a positive number`);
  }
}
