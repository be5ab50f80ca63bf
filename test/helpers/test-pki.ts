// A throwaway PKI for tests: one root per trust domain, SVIDs with any validity window, built with the
// same X.509 code the CA uses (src/identity/x509.ts), so tests exercise real certificates.
import { type SpiffeId, spiffeId } from '../../src/identity/spiffe-id.ts';
import type { WorkloadCertificate } from '../../src/identity/workload-certificate.ts';
import {
  createSelfSignedRoot,
  createSvid,
  generateP256KeyPair,
  type KeyPair,
  privateKeyToPem,
  type x509,
} from '../../src/identity/x509.ts';

const HOUR_MS = 3600_000;

export interface TestPki {
  readonly trustDomain: string;
  readonly rootPem: string;
  readonly rootCert: x509.X509Certificate;
  readonly rootKeys: KeyPair;
  /** An SVID for ns/sa; defaults to valid from one hour ago for 24 hours. */
  issue(namespace: string, serviceAccount: string, opts?: IssueOptions): Promise<WorkloadCertificate>;
  issueFor(identity: SpiffeId, opts?: IssueOptions): Promise<WorkloadCertificate>;
}

export interface IssueOptions {
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Extra roots to put in the bundle (e.g. another trust domain's). */
  readonly extraRootsPem?: readonly string[];
}

export async function createTestPki(trustDomain = 'cluster.local'): Promise<TestPki> {
  const rootKeys = await generateP256KeyPair();
  const now = Date.now();
  const rootCert = await createSelfSignedRoot({
    keys: rootKeys,
    commonName: `test root ${trustDomain}`,
    organization: trustDomain,
    notBefore: new Date(now - 24 * HOUR_MS),
    notAfter: new Date(now + 365 * 24 * HOUR_MS),
  });
  const rootPem = rootCert.toString('pem');
  async function issueFor(identity: SpiffeId, opts: IssueOptions = {}): Promise<WorkloadCertificate> {
    const keys = await generateP256KeyPair();
    const notBefore = opts.notBefore ?? new Date(Date.now() - HOUR_MS);
    const notAfter = opts.notAfter ?? new Date(Date.now() + 24 * HOUR_MS);
    const leaf = await createSvid({
      identity,
      subjectPublicKey: keys.publicKey,
      issuerCertificate: rootCert,
      issuerKey: rootKeys.privateKey,
      notBefore,
      notAfter,
    });
    return {
      identity,
      privateKeyPem: await privateKeyToPem(keys.privateKey),
      certChainPem: [leaf.toString('pem')],
      rootsPem: [rootPem, ...(opts.extraRootsPem ?? [])],
      notBefore,
      notAfter,
    };
  }
  return {
    trustDomain,
    rootPem,
    rootCert,
    rootKeys,
    issueFor,
    issue: (ns, sa, opts) => issueFor(spiffeId(trustDomain, ns, sa), opts),
  };
}
