// A container's environment as the kubelet builds it: literal `value`s, `valueFrom.fieldRef` (the pod's
// metadata.name/namespace/uid, labels['k'], annotations['k'], spec.nodeName, spec.serviceAccountName,
// status.podIP, status.hostIP), `$(VAR)` references to earlier variables, and the same expansion in
// `command`/`args` (`$$(VAR)` stays a literal `$(VAR)`; an unknown `$(VAR)` is left as written, as Kubernetes
// does). Pure: the pod's IP and host IP come from the caller (the kubelet picks the IP before it starts
// containers). Anything else in valueFrom (secretKeyRef, configMapKeyRef, resourceFieldRef) is refused
// with a message naming the variable, so a pod fails visibly instead of running without it.
import { isJson, type Json } from '../../kube/client.ts';

/** What the kubelet knows about the pod beyond its API object. */
export interface PodFacts {
  readonly podIp: string;
  readonly hostIp: string;
  readonly nodeName: string;
}

export type EnvResult =
  | { readonly ok: true; readonly env: Readonly<Record<string, string>> }
  | { readonly ok: false; readonly message: string };

/** The container's env (in order, later entries may refer to earlier ones), or why it cannot be built. */
export function resolveContainerEnv(container: Json, pod: Json, facts: PodFacts): EnvResult {
  const env: Record<string, string> = {};
  for (const e of Array.isArray(container.env) ? container.env.filter(isJson) : []) {
    if (typeof e.name !== 'string' || e.name === '') continue;
    if (typeof e.value === 'string') {
      env[e.name] = expandVars(e.value, env);
      continue;
    }
    if (e.valueFrom === undefined) {
      env[e.name] = ''; // `- name: X` without a value is the empty string
      continue;
    }
    const from = isJson(e.valueFrom) ? e.valueFrom : {};
    const fieldRef = isJson(from.fieldRef) ? from.fieldRef : null;
    if (fieldRef === null || typeof fieldRef.fieldPath !== 'string') {
      const kind = Object.keys(from)[0] ?? 'valueFrom';
      return { ok: false, message: `env ${e.name}: ${kind} is not supported by the local kubelet (only fieldRef)` };
    }
    const value = resolveFieldPath(fieldRef.fieldPath, pod, facts);
    if (value === null) {
      return { ok: false, message: `env ${e.name}: unsupported fieldPath ${JSON.stringify(fieldRef.fieldPath)}` };
    }
    env[e.name] = value;
  }
  return { ok: true, env };
}

/** One fieldRef path of the pod's downward API, or null for a path the kubelet does not resolve. */
export function resolveFieldPath(path: string, pod: Json, facts: PodFacts): string | null {
  const meta = isJson(pod.metadata) ? pod.metadata : {};
  const spec = isJson(pod.spec) ? pod.spec : {};
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  switch (path) {
    case 'metadata.name':
      return str(meta.name);
    case 'metadata.namespace':
      return str(meta.namespace);
    case 'metadata.uid':
      return str(meta.uid);
    case 'spec.nodeName':
      return facts.nodeName;
    case 'spec.serviceAccountName':
      return str(spec.serviceAccountName) === '' ? 'default' : str(spec.serviceAccountName);
    case 'status.podIP':
      return facts.podIp;
    case 'status.hostIP':
      return facts.hostIp;
    default: {
      const m = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(path);
      if (m === null) return null;
      const map = meta[m[1] as string];
      return isJson(map) ? str(map[m[2] as string]) : '';
    }
  }
}

/** `$(VAR)` → env[VAR] (unknown ones stay), `$$(VAR)` → literal `$(VAR)`. */
export function expandVars(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    return name !== undefined && Object.hasOwn(env, name) ? (env[name] as string) : m;
  });
}
