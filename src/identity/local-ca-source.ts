// A CertificateSource backed by a CA in this process (Istio's FAKE_CA idea, but with real CSRs and real
// signing): for single-node use, the demo and tests. Returns leaf + intermediates; the roots go in rootsPem.
import type { CertificateAuthority } from './ca.ts';
import type { CertificateSource } from './cert-manager.ts';
import { createCsr } from './csr-request.ts';
import type { SpiffeId } from './spiffe-id.ts';
import type { WorkloadCertificate } from './workload-certificate.ts';

export class LocalCaSource implements CertificateSource {
  readonly ca: CertificateAuthority;
  readonly #ttlSeconds: number;

  constructor(ca: CertificateAuthority, ttlSeconds = 0) {
    this.ca = ca;
    this.#ttlSeconds = ttlSeconds;
  }

  async fetch(identity: SpiffeId): Promise<WorkloadCertificate> {
    const csr = await createCsr(identity);
    const res = await this.ca.sign({ csrPem: csr.csrPem, ttlSeconds: this.#ttlSeconds });
    if (!res.ok) throw res.error;
    const roots = this.ca.trustBundlePem();
    return {
      identity,
      privateKeyPem: csr.privateKeyPem,
      certChainPem: res.value.certChainPem.filter((p) => !roots.includes(p)),
      rootsPem: roots,
      notBefore: res.value.notBefore,
      notAfter: res.value.notAfter,
    };
  }
}
