// In-process ztunnels for "direct" tests (ztunnel's tests/direct.rs): real listeners on loopback "pods"
// (127.0.0.x), all process servers on port 0, certificates from a real in-process CA, logs captured as
// parsed JSON lines. Each started ztunnel is shut down by the returned disposer.
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/identity/ca.ts';
import type { ManagedCertificates } from '../../src/identity/cert-manager.ts';
import { createCsr } from '../../src/identity/csr.ts';
import { formatSpiffeId, type SpiffeId } from '../../src/identity/spiffe-id.ts';
import type { WorkloadCertificate } from '../../src/identity/workload-certificate.ts';
import type { Ztunnel } from '../../src/ztunnel/app.ts';
import { startZtunnel } from '../../src/ztunnel/app.ts';
import { loadZtunnelConfig, type ZtunnelConfig } from '../../src/ztunnel/config.ts';

export interface LogCapture {
  readonly lines: Record<string, unknown>[];
  write(line: string): void;
  /** Resolves with the first line (already seen or future) matching `pred`. */
  waitFor(pred: (line: Record<string, unknown>) => boolean, signal?: AbortSignal): Promise<Record<string, unknown>>;
}

export function captureLogs(): LogCapture {
  const lines: Record<string, unknown>[] = [];
  const waiters: Array<{
    pred: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }> = [];
  return {
    lines,
    write(chunk: string) {
      for (const text of chunk.split('\n')) {
        if (text.trim() === '') continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        for (let i = waiters.length - 1; i >= 0; i--) {
          const w = waiters[i];
          if (w?.pred(line)) {
            waiters.splice(i, 1);
            w.resolve(line);
          }
        }
      }
    },
    waitFor(pred, signal) {
      const found = lines.find(pred);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        waiters.push({ pred, resolve });
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    },
  };
}

/** Certificates straight from an in-process CA (real CSRs, real signing), shared by all test ztunnels. */
export function inProcessCertificates(ca: CertificateAuthority): ManagedCertificates {
  const cache = new Map<string, Promise<WorkloadCertificate>>();
  return {
    getCertificate(id: SpiffeId) {
      const key = formatSpiffeId(id);
      let p = cache.get(key);
      if (p === undefined) {
        p = issue(ca, id);
        cache.set(key, p);
      }
      return p;
    },
    setLocalIdentities() {},
    onRotate() {
      return { [Symbol.dispose]() {} };
    },
    snapshot() {
      return [...cache.keys()];
    },
    close() {},
  };
}

async function issue(ca: CertificateAuthority, id: SpiffeId): Promise<WorkloadCertificate> {
  const csr = await createCsr(id);
  const signed = await ca.sign({ csrPem: csr.csrPem });
  if (!signed.ok) throw signed.error;
  return {
    identity: id,
    privateKeyPem: csr.privateKeyPem,
    certChainPem: signed.value.certChainPem.slice(0, -1),
    rootsPem: ca.trustBundlePem(),
    notBefore: signed.value.notBefore,
    notAfter: signed.value.notAfter,
  };
}

let configCounter = 0;

/** Writes `yaml` to a temp file and returns its path. */
export async function writeTempConfig(yaml: string): Promise<string> {
  const path = join(tmpdir(), `ferrytest-${process.pid}-${configCounter++}.yaml`);
  await writeFile(path, yaml);
  return path;
}

export interface TestZtunnelOptions {
  readonly node: string;
  /** Static config file; or `xdsAddress` to take config from an xDS server. */
  readonly configPath?: string;
  readonly xdsAddress?: string;
  readonly certificates: ManagedCertificates;
  readonly socks5?: boolean;
  readonly plaintextInbound?: readonly string[];
  readonly drainDeadlineMs?: number;
}

export interface TestZtunnel extends AsyncDisposable {
  readonly zt: Ztunnel;
  readonly logs: LogCapture;
  readonly config: ZtunnelConfig;
}

export async function startTestZtunnel(opts: TestZtunnelOptions): Promise<TestZtunnel> {
  const logs = captureLogs();
  const config = loadZtunnelConfig(
    {
      ...(opts.configPath === undefined ? {} : { config: opts.configPath }),
      ...(opts.xdsAddress === undefined ? {} : { 'xds-address': opts.xdsAddress }),
      node: opts.node,
      admin: '127.0.0.1:0',
      metrics: '127.0.0.1:0',
      readiness: '127.0.0.1:0',
      ...(opts.socks5 === false ? {} : { socks5: '127.0.0.1:0' }),
      'plaintext-inbound': opts.plaintextInbound ?? [],
      'drain-deadline-ms': String(opts.drainDeadlineMs ?? 1000),
      'log-level': 'debug',
    },
    {},
  );
  const zt = await startZtunnel(config, { certificates: opts.certificates, logDestination: logs });
  return {
    zt,
    logs,
    config,
    async [Symbol.asyncDispose]() {
      await zt.shutdown(0);
    },
  };
}

export async function testCa(trustDomain = 'cluster.local'): Promise<CertificateAuthority> {
  return CertificateAuthority.generate({ trustDomain });
}
