// dns.json in the cluster's state dir: how `ferry up` started the cluster DNS process, so the supervisor
// restarts it with the same arguments, and tests and tools find its addresses (like waypoints.json).
import { readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const DNS_FILE = 'dns.json';
export const DNS_ROLE = 'dns';

export interface LocalClusterDns {
  /** Where pods send queries: the bridge's gateway address, port 53. */
  readonly address: string;
  /** The netns its sockets live in (the bridge netns). */
  readonly netnsPath: string;
  /** `/healthz/ready` on loopback. */
  readonly readiness: string;
  /** `ferry` arguments (no secrets). */
  readonly args: readonly string[];
}

/** `ferry dns` arguments for a cluster. */
export function dnsArgs(cluster: string, dns: Omit<LocalClusterDns, 'args'>): string[] {
  return [
    'dns',
    '--cluster',
    cluster,
    '--address',
    dns.address,
    '--netns',
    dns.netnsPath,
    '--readiness',
    dns.readiness,
  ];
}

export async function writeDnsFile(stateDir: string, dns: LocalClusterDns): Promise<void> {
  const path = join(stateDir, DNS_FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(dns, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

/** dns.json, or null when the cluster has none (made before cluster DNS) or it is unreadable. */
export function readDnsFile(stateDir: string): LocalClusterDns | null {
  try {
    const v = JSON.parse(readFileSync(join(stateDir, DNS_FILE), 'utf8')) as Partial<LocalClusterDns>;
    const ok =
      typeof v.address === 'string' &&
      typeof v.netnsPath === 'string' &&
      typeof v.readiness === 'string' &&
      Array.isArray(v.args) &&
      v.args.every((a) => typeof a === 'string');
    return ok ? (v as LocalClusterDns) : null;
  } catch {
    return null;
  }
}
