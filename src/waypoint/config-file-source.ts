// A waypoint's config from a YAML file (tests, single node): the ztunnel's LOCAL_XDS_PATH shape
// (workloads, services, policies) plus `httpRoutes`, `grpcRoutes`, `tcpRoutes` and `authorizationPolicies` (Kubernetes objects:
// metadata.name/namespace/creationTimestamp and spec), `waypointGateways` (`ns/name` list) and
// `referenceGrants` (`fromNs|toNs|toName` list). A load replaces everything or nothing; SIGHUP reloads.

import { readFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import type { ObjectInput } from '../../gateway-api/types.ts';
import { FerryError } from '../errors.ts';
import { parseLocalConfig } from '../mesh/local-config/config.ts';
import { EMPTY_WAYPOINT_CONFIG, type WaypointConfig, type WaypointConfigSource } from './config-types.ts';

export class WaypointConfigError extends FerryError<'FERRY_WAYPOINT_CONFIG_INVALID'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FERRY_WAYPOINT_CONFIG_INVALID', message, options);
  }
}

const L7_KEYS = [
  'httpRoutes',
  'grpcRoutes',
  'tcpRoutes',
  'authorizationPolicies',
  'waypointGateways',
  'referenceGrants',
] as const;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A Kubernetes-shaped object → ObjectInput; throws WaypointConfigError naming the field. */
export function objectInputOf(raw: unknown, at: string, sequence: number): ObjectInput {
  if (!isObj(raw) || !isObj(raw.metadata)) throw new WaypointConfigError(`${at}.metadata: must be an object`);
  const { name, namespace, creationTimestamp } = raw.metadata;
  if (typeof name !== 'string' || name === '') throw new WaypointConfigError(`${at}.metadata.name: must be a string`);
  const ns = namespace ?? 'default';
  if (typeof ns !== 'string' || ns === '') throw new WaypointConfigError(`${at}.metadata.namespace: must be a string`);
  let creationTimestampMs: number | null = null;
  if (creationTimestamp !== undefined) {
    const t = Date.parse(String(creationTimestamp));
    if (Number.isNaN(t)) throw new WaypointConfigError(`${at}.metadata.creationTimestamp: not a timestamp`);
    creationTimestampMs = t;
  }
  return { namespace: ns, name, creationTimestampMs, sequence, spec: raw.spec };
}

function stringList(v: unknown, at: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))
    throw new WaypointConfigError(`${at}: must be a list of strings`);
  return v as string[];
}

export function parseWaypointConfig(text: string, sourceName: string): WaypointConfig {
  let doc: unknown;
  try {
    doc = parse(text) ?? {};
  } catch (err) {
    throw new WaypointConfigError(`${sourceName}: YAML syntax error: ${(err as Error).message}`);
  }
  if (!isObj(doc)) throw new WaypointConfigError(`${sourceName}: must be a mapping`);
  const mesh: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (!(L7_KEYS as readonly string[]).includes(k)) mesh[k] = v;
  const parsed = parseLocalConfig(stringify(mesh), sourceName);
  if (!parsed.ok) throw new WaypointConfigError(parsed.errors.map((e) => e.message).join('\n'));
  const objects = (key: 'httpRoutes' | 'grpcRoutes' | 'tcpRoutes' | 'authorizationPolicies') => {
    const list = doc[key] ?? [];
    if (!Array.isArray(list)) throw new WaypointConfigError(`${sourceName}: ${key}: must be a list`);
    return list.map((o, i) => objectInputOf(o, `${sourceName}: ${key}[${i}]`, i));
  };
  return {
    mesh: parsed.config,
    httpRoutes: objects('httpRoutes'),
    grpcRoutes: objects('grpcRoutes'),
    tcpRoutes: objects('tcpRoutes'),
    authorizationPolicies: objects('authorizationPolicies'),
    waypointGateways: stringList(doc.waypointGateways, `${sourceName}: waypointGateways`),
    referenceGrants: stringList(doc.referenceGrants, `${sourceName}: referenceGrants`),
  };
}

export class WaypointFileSource implements WaypointConfigSource {
  readonly #path: string;
  readonly #listeners = new Set<(c: WaypointConfig) => void>();
  #current: WaypointConfig = EMPTY_WAYPOINT_CONFIG;
  #synced: Promise<void>;
  #markSynced: () => void = () => {};

  constructor(path: string) {
    this.#path = path;
    this.#synced = new Promise((resolve) => {
      this.#markSynced = resolve;
    });
  }

  /** Reads the file; on error the current config stays and the error is thrown. */
  async load(): Promise<WaypointConfig> {
    const text = await readFile(this.#path, 'utf8').catch((err: Error) => {
      throw new WaypointConfigError(`${this.#path}: cannot read: ${err.message}`);
    });
    const config = parseWaypointConfig(text, this.#path);
    this.#current = config;
    this.#markSynced();
    for (const l of this.#listeners) l(config);
    return config;
  }

  current(): WaypointConfig {
    return this.#current;
  }

  onChange(listener: (config: WaypointConfig) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  whenSynced(): Promise<void> {
    return this.#synced;
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}
