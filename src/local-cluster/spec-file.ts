// Parses a local-runtime spec file (`ferry up --spec cluster.yaml`) into a ClusterSpec: the runtime's own
// input, used until `ferry up -f <manifests>` goes through the controller, and by tests. Shape:
//   name: demo            # optional, overridden by --cluster
//   nodes: 2              # optional, overridden by --nodes
//   podCidr: 10.244.0.0/16
//   pods: [{namespace, name, node?, labels?, containers: [{name, image?, command?, args?, env?, ports?}]}]
// Wire shape stops here: everything below works on ClusterSpec. Names and ranges are checked by planPods.
import { parse } from 'yaml';
import { ClusterError } from './errors.ts';
import type { ClusterSpec, ContainerSpec, PodSpec } from './layout.ts';

export function parseClusterSpec(text: string, overrides: { name?: string; nodes?: number }): ClusterSpec {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw bad(`not YAML/JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const o = obj(doc ?? {}, 'spec');
  const name = overrides.name ?? optString(o.name, 'name') ?? 'ferry';
  const nodes = overrides.nodes ?? (o.nodes === undefined ? 1 : num(o.nodes, 'nodes'));
  const pods = arr(o.pods ?? [], 'pods').map((p, i) => parsePod(p, `pods[${i}]`));
  const podCidr = optString(o.podCidr, 'podCidr');
  return podCidr === undefined ? { name, nodes, pods } : { name, nodes, pods, podCidr };
}

function parsePod(v: unknown, at: string): PodSpec {
  const o = obj(v, at);
  const node = o.node === undefined ? undefined : num(o.node, `${at}.node`);
  const labels = o.labels === undefined ? undefined : strMap(o.labels, `${at}.labels`);
  return {
    namespace: optString(o.namespace, `${at}.namespace`) ?? 'default',
    name: str(o.name, `${at}.name`),
    ...(node === undefined ? {} : { node }),
    ...(labels === undefined ? {} : { labels }),
    containers: arr(o.containers, `${at}.containers`).map((c, i) => parseContainer(c, `${at}.containers[${i}]`)),
  };
}

function parseContainer(v: unknown, at: string): ContainerSpec {
  const o = obj(v, at);
  const image = optString(o.image, `${at}.image`);
  const strs = (x: unknown, what: string): string[] | undefined =>
    x === undefined ? undefined : arr(x, what).map((s, i) => str(s, `${what}[${i}]`));
  const command = strs(o.command, `${at}.command`);
  const args = strs(o.args, `${at}.args`);
  const env = o.env === undefined ? undefined : strMap(o.env, `${at}.env`);
  const ports =
    o.ports === undefined ? undefined : arr(o.ports, `${at}.ports`).map((p, i) => num(p, `${at}.ports[${i}]`));
  return {
    name: str(o.name, `${at}.name`),
    ...(image === undefined ? {} : { image }),
    ...(command === undefined ? {} : { command }),
    ...(args === undefined ? {} : { args }),
    ...(env === undefined ? {} : { env }),
    ...(ports === undefined ? {} : { ports }),
  };
}

function obj(v: unknown, at: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${at}: expected an object`);
  return v as Record<string, unknown>;
}
function arr(v: unknown, at: string): unknown[] {
  if (!Array.isArray(v)) throw bad(`${at}: expected a list`);
  return v;
}
function str(v: unknown, at: string): string {
  if (typeof v !== 'string') throw bad(`${at}: expected a string`);
  return v;
}
function optString(v: unknown, at: string): string | undefined {
  return v === undefined ? undefined : str(v, at);
}
function num(v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(`${at}: expected an integer`);
  return v;
}
function strMap(v: unknown, at: string): Record<string, string> {
  const o = obj(v, at);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(o)) out[k] = typeof x === 'number' ? String(x) : str(x, `${at}.${k}`);
  return out;
}
function bad(message: string): ClusterError {
  return new ClusterError('FERRY_CLUSTER_INVALID_SPEC', message);
}
