// A waypoint's config from the controller over delta xDS (docs/architecture.md "Configuration distribution (delta xDS)"): wildcard subscriptions to
// istio.workload.Address (the mesh) and ferry.waypoint.v1.L7Resource (HTTP/GRPC/TCPRoutes, L7 policies, waypoint
// Gateways, ReferenceGrants), through the ztunnel's XdsClient (ACK/NACK, reconnect with backoff and
// initial_resource_versions). While the controller is away the last good config stays in effect.
import { readFile } from 'node:fs/promises';
import type { ObjectInput } from '../../gateway-api/types.ts';
import { MeshStore } from '../mesh/mesh-store.ts';
import type { Logger } from '../runtime/logger.ts';
import { ConfigError } from '../runtime/process-config.ts';
import { XdsClient } from '../xds/client.ts';
import { meshConfigOf, type XdsHeldState } from '../xds/client-state.ts';
import { ADDRESS_TYPE_URL, L7_TYPE_URL } from '../xds/proto.ts';
import {
  EMPTY_WAYPOINT_CONFIG,
  type WaypointConfig,
  type WaypointConfigSource,
  type WaypointIdentity,
} from './config-types.ts';

export interface WaypointXdsSourceOptions {
  readonly address: string;
  /** PEM root(s) verifying the controller's certificate (`--xds-root`); absent or null = plaintext. */
  readonly tls?: { readonly rootCertPem: string } | null;
  readonly waypoint: WaypointIdentity;
  readonly node: string;
  readonly log: Logger;
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
}

/** The `--xds-root` PEM; a missing or empty file stops the start with a message naming it. */
export async function readXdsRoot(path: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`--xds-root: ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new ConfigError(`--xds-root: ${path} holds no PEM certificate`);
  return pem;
}

/** The WaypointConfig of everything held, in resource-name order. */
export function waypointConfigOf(held: XdsHeldState): WaypointConfig {
  const httpRoutes: ObjectInput[] = [];
  const grpcRoutes: ObjectInput[] = [];
  const tcpRoutes: ObjectInput[] = [];
  const authorizationPolicies: ObjectInput[] = [];
  const waypointGateways: string[] = [];
  const referenceGrants: string[] = [];
  for (const name of [...held.l7.keys()].sort()) {
    const v = held.l7.get(name)?.value;
    if (v === undefined) continue;
    if (v.kind === 'HTTPRoute') httpRoutes.push(v.input);
    else if (v.kind === 'GRPCRoute') grpcRoutes.push(v.input);
    else if (v.kind === 'TCPRoute') tcpRoutes.push(v.input);
    else if (v.kind === 'AuthorizationPolicy') authorizationPolicies.push(v.input);
    else if (v.kind === 'Gateway') waypointGateways.push(v.ref);
    else if (v.kind === 'ReferenceGrant') referenceGrants.push(v.grant);
  }
  return {
    mesh: meshConfigOf(held),
    httpRoutes,
    grpcRoutes,
    tcpRoutes,
    authorizationPolicies,
    waypointGateways,
    referenceGrants,
  };
}

export class WaypointXdsSource implements WaypointConfigSource {
  readonly #client: XdsClient;
  readonly #listeners = new Set<(c: WaypointConfig) => void>();
  #current: WaypointConfig = EMPTY_WAYPOINT_CONFIG;
  #started: Promise<void> | null = null;

  constructor(opts: WaypointXdsSourceOptions) {
    const id = `${opts.waypoint.namespace}/${opts.waypoint.name}`;
    this.#client = new XdsClient({
      address: opts.address,
      tls: opts.tls ?? null,
      nodeId: `waypoint~${id}~${opts.node}`,
      nodeName: opts.node,
      store: new MeshStore(),
      log: opts.log,
      types: [ADDRESS_TYPE_URL, L7_TYPE_URL],
      userAgent: 'ferry-waypoint',
      ...(opts.backoff === undefined ? {} : { backoff: opts.backoff }),
      onHeld: (held) => {
        this.#current = waypointConfigOf(held);
        if (!this.#client.synced) return; // announce only complete configs
        for (const l of this.#listeners) l(this.#current);
      },
    });
  }

  current(): WaypointConfig {
    return this.#current;
  }

  onChange(listener: (config: WaypointConfig) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  whenSynced(): Promise<void> {
    this.#started ??= this.#client.start();
    return this.#started.then(() => this.#client.whenSynced());
  }

  status(): unknown {
    return this.#client.status();
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}
