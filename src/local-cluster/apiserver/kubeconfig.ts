// A kubeconfig for the local API server (one cluster, one user with the bearer token, one context), written
// 0600 and atomically: kubectl and @kubernetes/client-node read it as they read any cluster's.
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { stringify } from 'yaml';
import { writeFileDurable } from '../../runtime/durable-file.ts';

export interface KubeconfigParams {
  readonly server: string;
  readonly caPem: string;
  readonly token: string;
  readonly clusterName: string;
  /** Namespace of the context; kubectl's default is "default". */
  readonly namespace?: string;
}

export function kubeconfigText(p: KubeconfigParams): string {
  const user = `${p.clusterName}-admin`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: p.clusterName,
        cluster: { server: p.server, 'certificate-authority-data': Buffer.from(p.caPem).toString('base64') },
      },
    ],
    users: [{ name: user, user: { token: p.token } }],
    contexts: [{ name: p.clusterName, context: { cluster: p.clusterName, user, namespace: p.namespace ?? 'default' } }],
    'current-context': p.clusterName,
    preferences: {},
  });
}

/** Writes the kubeconfig (0600; a missing directory is created 0700, an existing one left as it is). */
export async function writeKubeconfig(path: string, p: KubeconfigParams): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileDurable(path, kubeconfigText(p), 0o600);
}
