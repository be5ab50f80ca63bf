// Builds the ztunnel's certificate manager from its CA configuration: the gRPC CA client (Istio's
// CreateCertificate, impersonating local workloads' identities) or an in-process CA for single-node use.
// Adapts the identity area's CertificateManager to what the ztunnel needs (ManagedCertificates).

import { CaClient } from '../identity/ca-client.ts';
import { caTokenProvider } from '../identity/ca-token.ts';
import type { ManagedCertificates } from '../identity/cert-manager.ts';
import { CertificateManager, type CertificateSource } from '../identity/cert-manager.ts';
import type { WorkloadCertificate } from '../identity/workload-certificate.ts';
import type { Logger } from '../runtime/logger.ts';
import { type CaConfig, formatHostPort } from '../runtime/process-config.ts';

/** Wraps a CertificateManager so the ztunnel sees rotations as plain callbacks. */
export function managedCertificates(manager: CertificateManager, onClose: () => void = () => {}): ManagedCertificates {
  return {
    getCertificate: (id) => manager.getCertificate(id),
    setLocalIdentities: (ids) => manager.setLocalIdentities(ids),
    onRotate(listener: (cert: WorkloadCertificate) => void) {
      return manager.onEvent((e) => {
        if (e.kind === 'rotated') listener(e.certificate);
      });
    },
    snapshot: () => manager.snapshot(),
    close() {
      manager.close();
      onClose();
    },
  };
}

export async function createZtunnelCertificates(
  ca: CaConfig,
  trustDomain: string,
  logger: Logger,
): Promise<ManagedCertificates> {
  const log = logger.child({ scope: 'identity' });
  let source: CertificateSource;
  let onClose = (): void => {};
  if (ca.kind === 'grpc') {
    const client = await CaClient.create({
      address: formatHostPort(ca.address),
      roots: { file: ca.rootCertPath },
      ...(ca.token === null ? {} : { token: caTokenProvider(ca.token) }),
      impersonate: true,
    });
    source = client;
    onClose = () => client.close();
  } else {
    // Loaded only here: the in-process CA pulls in the X.509 library (≈ 10 MiB) that a ztunnel or waypoint
    // asking a remote CA never needs (docs/performance.md, issue 12).
    const [{ CertificateAuthority }, { LocalCaSource }] = await Promise.all([
      import('../identity/ca.ts'),
      import('../identity/local-ca-source.ts'),
    ]);
    const authority =
      ca.caDir === null
        ? await CertificateAuthority.generate({ trustDomain })
        : await CertificateAuthority.loadPluggedIn(ca.caDir, { trustDomain });
    source = new LocalCaSource(authority);
  }
  return managedCertificates(new CertificateManager({ source, log }), onClose);
}
