// A pod's volumes and a container's volumeMounts, read into plain values, and how they reach processes that
// share the host's filesystem. The local kubelet has no mount namespaces, so a volume is a per-pod host
// directory (`<stateDir>/pods/<uid>/volumes/<name>`, podVolumeDir) and a container sees it through its
// arguments and environment: every `mountPath` (at the start of a value, or after `=`, `:` or `,`) is
// rewritten to that directory (plus `subPath`). Kinds: emptyDir, configMap, secret, projected
// (serviceAccountToken, configMap, secret), and hostPath, whose mountPath is rewritten to the host path
// itself (nothing is created or checked there: `type` is not enforced). Unless the pod sets
// `automountServiceAccountToken: false`, every container also gets the in-cluster files (token, ca.crt,
// namespace) at SERVICE_ACCOUNT_DIR, as the ServiceAccount admission and a real kubelet give them. Anything
// else (persistentVolumeClaim, downwardAPI…) is refused naming the volume. Pure; pod-volume-files.ts
// writes the files.
import { join } from 'node:path';
import { isJson, type Json, SERVICE_ACCOUNT_DIR } from '../../kube/client.ts';

/** Token lifetime when a serviceAccountToken source gives none (Kubernetes' default). */
export const DEFAULT_TOKEN_EXPIRATION_S = 3600;
/** The automounted in-cluster volume (Kubernetes names it kube-api-access-<random>). */
export const SERVICE_ACCOUNT_VOLUME = 'kube-api-access';
/** Its token's lifetime, as the ServiceAccount admission asks (3607 s). */
const AUTOMOUNT_TOKEN_EXPIRATION_S = 3607;

export interface KeyToPath {
  readonly key: string;
  readonly path: string;
}

/** One file source of a volume: the files land in the volume's directory. */
export type VolumeSource =
  | {
      readonly kind: 'configMap';
      readonly name: string;
      readonly items: readonly KeyToPath[] | null;
      readonly optional: boolean;
    }
  | {
      readonly kind: 'secret';
      readonly name: string;
      readonly items: readonly KeyToPath[] | null;
      readonly optional: boolean;
    }
  | {
      readonly kind: 'serviceAccountToken';
      /** null: the API server's default audience. */
      readonly audience: string | null;
      readonly expirationSeconds: number;
      readonly path: string;
      /**
       * Only the automounted token: a pod whose ServiceAccount does not exist still starts, without a
       * token file (the local cluster creates no `default` ServiceAccount per namespace).
       */
      readonly optional: boolean;
    }
  /** The API server's CA bundle (what the kube-root-ca.crt ConfigMap holds on a real cluster). */
  | { readonly kind: 'apiCa'; readonly path: string }
  /** The pod's namespace (a downwardAPI metadata.namespace item). */
  | { readonly kind: 'podNamespace'; readonly path: string };

export interface PodVolume {
  readonly name: string;
  /** emptyDir: no sources, an empty directory. */
  readonly sources: readonly VolumeSource[];
  /** hostPath: the host's own path, seen as is (no per-pod directory). */
  readonly hostPath: string | null;
}

export interface VolumeMount {
  readonly name: string;
  readonly mountPath: string;
  readonly subPath: string;
}

export type VolumesResult =
  | { readonly ok: true; readonly volumes: readonly PodVolume[] }
  | { readonly ok: false; readonly message: string };

/** `<stateDir>/pods/<uid>`: the pod's files on the host (its volumes), removed with the pod. */
export function podFilesDir(stateDir: string, uid: string): string {
  return join(stateDir, 'pods', uid);
}

export function podVolumesRoot(stateDir: string, uid: string): string {
  return join(podFilesDir(stateDir, uid), 'volumes');
}

export function podVolumeDir(stateDir: string, uid: string, volume: string): string {
  return join(podVolumesRoot(stateDir, uid), volume);
}

/** The pod's volumes, or the first one the local kubelet cannot provide. */
export function podVolumes(pod: Json): VolumesResult {
  const spec = isJson(pod.spec) ? pod.spec : {};
  const out: PodVolume[] = [];
  for (const v of Array.isArray(spec.volumes) ? spec.volumes.filter(isJson) : []) {
    const name = typeof v.name === 'string' ? v.name : '';
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) {
      return { ok: false, message: `volume ${JSON.stringify(name)}: not a valid volume name` };
    }
    if (isJson(v.hostPath)) {
      const path = typeof v.hostPath.path === 'string' ? v.hostPath.path.replace(/\/+$/, '') : '';
      if (!path.startsWith('/')) return { ok: false, message: `volume ${name}: hostPath.path must be absolute` };
      out.push({ name, sources: [], hostPath: path === '' ? '/' : path });
      continue;
    }
    const sources = volumeSources(v);
    if (typeof sources === 'string') return { ok: false, message: `volume ${name}: ${sources}` };
    out.push({ name, sources, hostPath: null });
  }
  if (spec.automountServiceAccountToken !== false && !out.some((v) => v.name === SERVICE_ACCOUNT_VOLUME)) {
    out.push(serviceAccountVolume());
  }
  return { ok: true, volumes: out };
}

function serviceAccountVolume(): PodVolume {
  return {
    name: SERVICE_ACCOUNT_VOLUME,
    sources: [
      {
        kind: 'serviceAccountToken',
        audience: null,
        expirationSeconds: AUTOMOUNT_TOKEN_EXPIRATION_S,
        path: 'token',
        optional: true,
      },
      { kind: 'apiCa', path: 'ca.crt' },
      { kind: 'podNamespace', path: 'namespace' },
    ],
    hostPath: null,
  };
}

function volumeSources(v: Json): VolumeSource[] | string {
  if (isJson(v.emptyDir)) return [];
  if (isJson(v.configMap)) return [objectSource('configMap', v.configMap, v.configMap.name)];
  if (isJson(v.secret)) return [objectSource('secret', v.secret, v.secret.secretName)];
  if (isJson(v.projected)) {
    const out: VolumeSource[] = [];
    for (const s of Array.isArray(v.projected.sources) ? v.projected.sources.filter(isJson) : []) {
      if (isJson(s.configMap)) out.push(objectSource('configMap', s.configMap, s.configMap.name));
      else if (isJson(s.secret)) out.push(objectSource('secret', s.secret, s.secret.name));
      else if (isJson(s.serviceAccountToken)) {
        const t = s.serviceAccountToken;
        if (typeof t.path !== 'string' || !isRelativePath(t.path))
          return 'serviceAccountToken.path must be a relative path';
        out.push({
          kind: 'serviceAccountToken',
          audience: typeof t.audience === 'string' && t.audience !== '' ? t.audience : null,
          expirationSeconds: typeof t.expirationSeconds === 'number' ? t.expirationSeconds : DEFAULT_TOKEN_EXPIRATION_S,
          path: t.path,
          optional: false,
        });
      } else return `projected source ${Object.keys(s)[0] ?? '{}'} is not supported by the local kubelet`;
    }
    return out;
  }
  const kind = Object.keys(v).find((k) => k !== 'name') ?? 'no source';
  return `${kind} is not supported by the local kubelet (emptyDir, configMap, secret, projected)`;
}

function objectSource(kind: 'configMap' | 'secret', v: Json, name: unknown): VolumeSource {
  const items = Array.isArray(v.items)
    ? v.items
        .filter(isJson)
        .filter((i) => typeof i.key === 'string' && typeof i.path === 'string' && isRelativePath(i.path))
        .map((i) => ({ key: i.key as string, path: i.path as string }))
    : null;
  return { kind, name: typeof name === 'string' ? name : '', items, optional: v.optional === true };
}

/** A path inside the volume: relative, without `..` (what the API server also refuses). */
export function isRelativePath(p: string): boolean {
  return p !== '' && !p.startsWith('/') && !p.split('/').includes('..');
}

/** The container's volumeMounts, or the first that names no volume of the pod. */
export function containerMounts(
  container: Json,
  volumes: readonly PodVolume[],
): { ok: true; mounts: VolumeMount[] } | { ok: false; message: string } {
  const mounts: VolumeMount[] = [];
  for (const m of Array.isArray(container.volumeMounts) ? container.volumeMounts.filter(isJson) : []) {
    const name = typeof m.name === 'string' ? m.name : '';
    const mountPath = typeof m.mountPath === 'string' ? m.mountPath.replace(/\/+$/, '') : '';
    if (!volumes.some((v) => v.name === name)) {
      return { ok: false, message: `volumeMount ${JSON.stringify(name)}: no such volume in the pod` };
    }
    if (!mountPath.startsWith('/')) return { ok: false, message: `volumeMount ${name}: mountPath must be absolute` };
    const subPath = typeof m.subPath === 'string' ? m.subPath : '';
    if (subPath !== '' && !isRelativePath(subPath)) {
      return { ok: false, message: `volumeMount ${name}: subPath must be a relative path` };
    }
    mounts.push({ name, mountPath, subPath });
  }
  const automounted = volumes.some((v) => v.name === SERVICE_ACCOUNT_VOLUME);
  if (automounted && !mounts.some((m) => m.mountPath === SERVICE_ACCOUNT_DIR)) {
    mounts.push({ name: SERVICE_ACCOUNT_VOLUME, mountPath: SERVICE_ACCOUNT_DIR, subPath: '' });
  }
  return { ok: true, mounts };
}

/** mountPath → host path, longest mountPath first (so `/a/b` wins over `/a`). */
export function mountTable(
  stateDir: string,
  uid: string,
  mounts: readonly VolumeMount[],
  volumes: readonly PodVolume[] = [],
): { readonly mountPath: string; readonly hostPath: string }[] {
  return mounts
    .map((m) => {
      const dir = volumes.find((v) => v.name === m.name)?.hostPath ?? podVolumeDir(stateDir, uid, m.name);
      return { mountPath: m.mountPath, hostPath: m.subPath === '' ? dir : join(dir, m.subPath) };
    })
    .sort((a, b) => b.mountPath.length - a.mountPath.length);
}

/**
 * `text` with each mounted path replaced by its host path: `/var/run/x/token` and `--f=/var/run/x/token`
 * become `<host dir>/token` and `--f=<host dir>/token`; `/var/run/xy` is not under `/var/run/x`.
 */
export function rewriteMountPaths(text: string, table: readonly { mountPath: string; hostPath: string }[]): string {
  if (table.length === 0) return text;
  const alternatives = table.map((t) => t.mountPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  const re = new RegExp(`(^|[=:,])(${alternatives})(?=$|[/:,])`, 'g');
  return text.replace(re, (_m, lead: string, path: string) => {
    const hit = table.find((t) => t.mountPath === path);
    return `${lead}${hit === undefined ? path : hit.hostPath}`;
  });
}
