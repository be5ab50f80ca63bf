// Renders charts/ferry with the real, pinned helm v4 (test/helpers/k8s-tools.ts) and gives the objects back
// parsed, plus small finders the chart tests share.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from './k8s-schema.ts';
import { k8sToolPath } from './k8s-tools.ts';

export const CHART_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'charts', 'ferry');
export const RELEASE = 'ferry';
export const NAMESPACE = 'ferry-system';

export interface HelmResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function helm(args: readonly string[]): HelmResult {
  const r = spawnSync(k8sToolPath('helm'), [...args], {
    encoding: 'utf8',
    timeout: 60_000,
    // No user config or cache of this machine leaks into the run.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', HELM_CACHE_HOME: '/tmp/ferry-helm-cache' },
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `helm template` with --set style flags; throws with helm's stderr when it fails. */
export function render(setArgs: readonly string[] = []): KubeObject[] {
  const r = helm(['template', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--include-crds', ...setArgs]);
  if (r.status !== 0) throw new Error(`helm template ${setArgs.join(' ')} failed (${r.status}): ${r.stderr}`);
  return parseManifests(r.stdout);
}

export function parseManifests(text: string): KubeObject[] {
  const out: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`);
    const value = doc.toJS() as KubeObject | null;
    if (value !== null) out.push(value);
  }
  return out;
}

export function find(objects: readonly KubeObject[], kind: string, name: string): KubeObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (o === undefined) throw new Error(`no ${kind} ${name} rendered`);
  return o;
}

// Loose views of the fields the tests read (the schema validation checks the full shape).
export interface ContainerView {
  readonly name: string;
  readonly image: string;
  readonly args: string[];
  readonly readinessProbe?: { readonly httpGet?: { readonly path: string; readonly port: number } };
  readonly livenessProbe?: { readonly httpGet?: { readonly path: string; readonly port: number } };
  readonly securityContext?: Record<string, unknown> & {
    readonly capabilities?: { readonly add?: string[]; readonly drop?: string[] };
  };
  readonly volumeMounts?: { readonly name: string; readonly mountPath: string; readonly readOnly?: boolean }[];
  readonly ports?: { readonly name: string; readonly containerPort: number; readonly hostPort?: number }[];
}

export interface PodSpecView {
  readonly containers: ContainerView[];
  readonly volumes?: (Record<string, unknown> & { readonly name: string })[];
  readonly [k: string]: unknown;
}

export function podSpec(workload: KubeObject): PodSpecView {
  return (workload.spec as { template: { spec: PodSpecView } }).template.spec;
}

export function container(workload: KubeObject, name: string): ContainerView {
  const c = podSpec(workload).containers.find((x) => x.name === name);
  if (c === undefined) throw new Error(`${workload.kind} ${workload.metadata.name} has no container ${name}`);
  return c;
}

/** The value of `--flag=value` in args; undefined when the flag is absent. */
export function flag(args: readonly string[], name: string): string | undefined {
  const a = args.find((x) => x === name || x.startsWith(`${name}=`));
  if (a === undefined) return undefined;
  return a === name ? '' : a.slice(name.length + 1);
}

/** The documents of the waypoint template ConfigMap with the controller's placeholders filled in. */
export function waypointObjects(objects: readonly KubeObject[], gateway = { name: 'waypoint', namespace: 'shop' }) {
  const cm = find(objects, 'ConfigMap', `${RELEASE}-waypoint-template`);
  const text = (cm.data as Record<string, string>)['waypoint.yaml'];
  if (text === undefined) throw new Error('waypoint template ConfigMap has no waypoint.yaml');
  const docs = parseManifests(text);
  const fill = (v: unknown): unknown => {
    if (typeof v === 'string') {
      return v
        .replaceAll('__GATEWAY_NAME__', gateway.name)
        .replaceAll('__GATEWAY_NAMESPACE__', gateway.namespace)
        .replaceAll('__GATEWAY_UID__', '0b3c9d7e-5d0c-4a59-9a8e-2f1c6b7d8e9f');
    }
    if (Array.isArray(v)) return v.map(fill);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)]));
    return v;
  };
  return { raw: docs, filled: docs.map((d) => fill(d) as KubeObject) };
}
