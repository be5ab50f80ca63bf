// Writes a pod's volumes (pod-volumes.ts) into their host directories, from the API as the kubelet does:
// ConfigMap/Secret keys as files, a projected ServiceAccount token by TokenRequest (the pod's service
// account, the audience and lifetime asked, bound to the pod, so a TokenReview names the pod and its node),
// the API's CA bundle and the pod's namespace (the automounted in-cluster files), an emptyDir as an empty
// directory; a hostPath volume is left alone. Each file is replaced atomically (write + rename: a reader
// sees the old or the new content, never half). Returns when the next refresh is due: a token at 80% of its life
// (as the kubelet rotates them), ConfigMaps and Secrets every CONFIG_REFRESH_MS. A missing non-optional
// ConfigMap/Secret fails the whole pass (the pod waits in ContainerCreating, as on a real node).
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isJson, type Json, type KubeClient } from '../../kube/client.ts';
import { KubeError } from '../../kube/errors.ts';
import { type KeyToPath, type PodVolume, podVolumeDir } from './pod-volumes.ts';

/** How often ConfigMap and Secret volumes are read again (the kubelet's sync period is about a minute). */
export const CONFIG_REFRESH_MS = 10_000;

export interface VolumeOwner {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccount: string;
}

export type WriteVolumesResult =
  | { readonly ok: true; readonly refreshAtMs: number }
  | { readonly ok: false; readonly message: string };

export async function writePodVolumes(
  client: KubeClient,
  stateDir: string,
  pod: VolumeOwner,
  volumes: readonly PodVolume[],
  nowMs: number,
  signal: AbortSignal,
): Promise<WriteVolumesResult> {
  let refreshAtMs = nowMs + CONFIG_REFRESH_MS;
  for (const v of volumes) {
    if (v.hostPath !== null) continue; // the host's own path: nothing to write
    const dir = podVolumeDir(stateDir, pod.uid, v.name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const s of v.sources) {
      if (s.kind === 'serviceAccountToken') {
        const token = await requestToken(client, pod, s.audience, s.expirationSeconds, signal);
        if (!token.ok && s.optional) continue;
        if (!token.ok) return { ok: false, message: `volume ${v.name}: ${token.message}` };
        writeAtomically(join(dir, s.path), token.token, 0o600);
        refreshAtMs = Math.min(refreshAtMs, nowMs + Math.floor(s.expirationSeconds * 1000 * 0.8));
        continue;
      }
      if (s.kind === 'apiCa' || s.kind === 'podNamespace') {
        const content = s.kind === 'podNamespace' ? pod.namespace : apiCaBundle(client);
        if (content === null) return { ok: false, message: `volume ${v.name}: the kubelet's API config has no CA` };
        writeAtomically(join(dir, s.path), content, 0o644);
        continue;
      }
      const collection = s.kind === 'configMap' ? 'configmaps' : 'secrets';
      const object = await getOrNull(client, `/api/v1/namespaces/${pod.namespace}/${collection}/${s.name}`, signal);
      if (object === null) {
        if (s.optional) continue;
        return { ok: false, message: `volume ${v.name}: ${s.kind} ${pod.namespace}/${s.name} not found` };
      }
      const files = objectFiles(object, s.kind === 'secret');
      const written = writeKeys(dir, files, s.items);
      if (written !== null) return { ok: false, message: `volume ${v.name}: ${s.kind} ${s.name}: ${written}` };
    }
  }
  return { ok: true, refreshAtMs };
}

/** The CA the kubelet itself trusts for the API server: what pods need to trust it too. */
function apiCaBundle(client: KubeClient): Buffer | null {
  const cluster = client.config.getCurrentCluster();
  if (cluster?.caData !== undefined && cluster.caData !== '') return Buffer.from(cluster.caData, 'base64');
  if (cluster?.caFile !== undefined && cluster.caFile !== '') return readFileSync(cluster.caFile);
  return null;
}

/** A ConfigMap's data (text) and binaryData, or a Secret's data (base64), as key → bytes. */
export function objectFiles(object: Json, secret: boolean): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const data = isJson(object.data) ? object.data : {};
  for (const [k, v] of Object.entries(data)) {
    if (typeof v === 'string') out.set(k, secret ? Buffer.from(v, 'base64') : Buffer.from(v));
  }
  const binary = !secret && isJson(object.binaryData) ? object.binaryData : {};
  for (const [k, v] of Object.entries(binary)) if (typeof v === 'string') out.set(k, Buffer.from(v, 'base64'));
  return out;
}

/** Writes every key (or only `items`, each under its path); a missing item key is an error, as in Kubernetes. */
function writeKeys(dir: string, files: ReadonlyMap<string, Buffer>, items: readonly KeyToPath[] | null): string | null {
  const plan = items ?? [...files.keys()].map((key) => ({ key, path: key }));
  for (const { key, path } of plan) {
    const content = files.get(key);
    if (content === undefined) return `key ${JSON.stringify(key)} not found`;
    writeAtomically(join(dir, path), content, 0o644);
  }
  return null;
}

function writeAtomically(path: string, content: string | Buffer, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, path);
}

async function requestToken(
  client: KubeClient,
  pod: VolumeOwner,
  audience: string | null,
  expirationSeconds: number,
  signal: AbortSignal,
): Promise<{ ok: true; token: string } | { ok: false; message: string }> {
  const body = {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: {
      ...(audience === null ? {} : { audiences: [audience] }),
      expirationSeconds,
      boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod.name, uid: pod.uid },
    },
  };
  const path = `/api/v1/namespaces/${pod.namespace}/serviceaccounts/${pod.serviceAccount}/token`;
  try {
    const answer = await client.request('POST', path, { json: body }, signal);
    const status = isJson(answer) && isJson(answer.status) ? answer.status : {};
    if (typeof status.token !== 'string') return { ok: false, message: 'TokenRequest answered without a token' };
    return { ok: true, token: status.token };
  } catch (err) {
    return { ok: false, message: `TokenRequest for ${pod.namespace}/${pod.serviceAccount}: ${(err as Error).message}` };
  }
}

async function getOrNull(client: KubeClient, path: string, signal: AbortSignal): Promise<Json | null> {
  try {
    return await client.get(path, signal);
  } catch (err) {
    if (err instanceof KubeError && err.status === 404) return null;
    throw err;
  }
}
