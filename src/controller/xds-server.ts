// The controller's delta xDS server (docs/architecture.md "Configuration distribution (delta xDS)", "Processes and ports" port 15012): Envoy's
// AggregatedDiscoveryService/DeltaAggregatedResources for istio.workload.Address and
// istio.security.Authorization. Holds the current resources per type; every stream gets only what changed
// since what its client holds (xds-stream.ts). ACKs and NACKs are reported through hooks and logs; a NACK
// never stops the stream. Hostile bytes on the port stay inside gRPC's framing and never stop the server.
// With `deferServing`, subscriptions are held unanswered until startServing(): a restarting controller
// must not answer a reconnecting ztunnel with its still-empty snapshot (the delta diff would remove every
// resource the ztunnel holds, policies included: fail-open) before its durable state is loaded and published.

import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { MeshConfig } from '../mesh/types.ts';
import { type Logger, silentLogger } from '../runtime/logger.ts';
import type { XdsErrorCode } from '../xds/errors.ts';
import { L7_TYPE_URL, loadXdsProtos, XDS_TYPE_URLS, type XdsTypeUrl } from '../xds/proto.ts';
import type { L7Entry } from './translate/types.ts';
import { l7Resources, meshResources, type ResourceMap } from './xds-resources.ts';
import {
  logIgnored,
  type StreamTypeStatus,
  type TypeSnapshot,
  type XdsAckEvent,
  type XdsNackEvent,
  type XdsPushEvent,
  XdsStreamState,
} from './xds-stream.ts';

export type { XdsAckEvent, XdsNackEvent, XdsPushEvent } from './xds-stream.ts';

/** Requests are small (ACKs; initial versions: ~100 bytes per resource held); bound what a peer can make us parse. */
export const MAX_XDS_REQUEST_BYTES = 16 * 1024 * 1024;

export interface XdsServerOptions {
  /** Listen address; default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (any free port; read `port` afterwards). The controller uses 15012. */
  readonly port?: number;
  /** Serving certificate (PEM chain, leaf first) and key; null/absent = plaintext (tests, local mode). */
  readonly tls?: { readonly certChainPem: string; readonly keyPem: string } | null;
  readonly log?: Logger;
  /** Called for every ACK (tests wait on it; the controller measures push latency with it). */
  readonly onAck?: (event: XdsAckEvent) => void;
  readonly onNack?: (event: XdsNackEvent) => void;
  /** Called for every response written. */
  readonly onPush?: (event: XdsPushEvent) => void;
  /** Hold every subscription unanswered until startServing() is called. Default false (serve at once). */
  readonly deferServing?: boolean;
}

export interface XdsClientStatus {
  readonly nodeId: string;
  readonly streamId: number;
  readonly peer: string;
  readonly types: readonly (StreamTypeStatus & { readonly upToDate: boolean })[];
}

export interface XdsServer extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** `host:port`, as a gRPC target. */
  readonly address: string;
  /** Serves `config` from now on: both types, replaced whole; streams get the difference. */
  publish(config: MeshConfig): void;
  /** Publishes what waypoints compile themselves (ferry.waypoint.v1.L7Resource). */
  publishL7(entries: readonly L7Entry[]): void;
  /** Replaces the resources of one type; streams get the difference. */
  setResources(typeUrl: XdsTypeUrl, resources: ResourceMap): void;
  /** Answers subscriptions from now on, the held ones at once (with `deferServing`); idempotent. */
  startServing(): void;
  /** Whether subscriptions are answered. */
  readonly serving: boolean;
  /** Server generation per type: increases whenever that type's resources change. */
  generation(typeUrl: XdsTypeUrl): number;
  /** Connected clients and what they ACKed. */
  clients(): XdsClientStatus[];
  /** Ends every stream (clients reconnect elsewhere or later) and stops listening. */
  close(): Promise<void>;
}

type Call = grpc.ServerDuplexStream<Record<string, unknown>, unknown>;

interface Connected {
  readonly call: Call;
  readonly state: XdsStreamState;
  readonly peer: string;
}

/** Starts the xDS server; resolves once it listens. */
export async function startXdsServer(opts: XdsServerOptions = {}): Promise<XdsServer> {
  const protos = await loadXdsProtos();
  const host = opts.host ?? '127.0.0.1';
  const log = (opts.log ?? silentLogger).child({ scope: 'xds' });
  const core = new XdsServerCore(log, opts);

  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_XDS_REQUEST_BYTES });
  server.addService(protos.service, { DeltaAggregatedResources: (call: Call) => core.serve(call) });
  const credentials =
    opts.tls === null || opts.tls === undefined
      ? grpc.ServerCredentials.createInsecure()
      : grpc.ServerCredentials.createSsl(
          null, // ztunnels authenticate the server by its certificate; client identity is not checked here
          [{ private_key: Buffer.from(opts.tls.keyPem), cert_chain: Buffer.from(opts.tls.certChainPem) }],
          false,
        );
  const bindHost = isIP(host) === 6 ? `[${host}]` : host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${bindHost}:${opts.port ?? 0}`, credentials, (err, bound) =>
      err === null ? resolve(bound) : reject(err),
    );
  });
  log.info({ host, port, tls: opts.tls !== null && opts.tls !== undefined }, 'xDS server listening');

  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      core.endAll();
      server.tryShutdown(() => resolve());
    });
    return closed;
  };
  return {
    host,
    port,
    address: `${bindHost}:${port}`,
    publish: (config) => {
      for (const [typeUrl, resources] of meshResources(protos, config)) core.setResources(typeUrl, resources);
    },
    publishL7: (entries) => core.setResources(L7_TYPE_URL, l7Resources(protos, entries)),
    setResources: (typeUrl, resources) => core.setResources(typeUrl, resources),
    startServing: () => core.startServing(),
    get serving() {
      return core.serving;
    },
    generation: (typeUrl) => core.snapshot(typeUrl).generation,
    clients: () => core.clients(),
    close,
    [Symbol.asyncDispose]: close,
  };
}

class XdsServerCore {
  readonly #log: Logger;
  readonly #opts: XdsServerOptions;
  readonly #snapshots = new Map<XdsTypeUrl, TypeSnapshot>();
  readonly #streams = new Set<Connected>();
  #streamIds = 0;
  #serving: boolean;

  constructor(log: Logger, opts: XdsServerOptions) {
    this.#log = log;
    this.#opts = opts;
    this.#serving = opts.deferServing !== true;
    for (const t of XDS_TYPE_URLS) this.#snapshots.set(t, { resources: new Map(), generation: 0 });
  }

  snapshot(typeUrl: XdsTypeUrl): TypeSnapshot {
    return this.#snapshots.get(typeUrl) ?? { resources: new Map(), generation: 0 };
  }

  setResources(typeUrl: XdsTypeUrl, resources: ResourceMap): void {
    const previous = this.snapshot(typeUrl);
    if (sameVersions(previous.resources, resources)) return;
    const snapshot = { resources: new Map(resources), generation: previous.generation + 1 };
    this.#snapshots.set(typeUrl, snapshot);
    if (!this.#serving) return;
    for (const s of this.#streams) if (s.state.subscribed(typeUrl)) this.#push(s, typeUrl, false);
  }

  get serving(): boolean {
    return this.#serving;
  }

  startServing(): void {
    if (this.#serving) return;
    this.#serving = true;
    this.#log.info({ held: this.#streams.size }, 'xDS serving');
    for (const s of this.#streams) {
      for (const t of XDS_TYPE_URLS) if (s.state.subscribed(t)) this.#push(s, t, true);
    }
  }

  serve(call: Call): void {
    const connected: Connected = { call, state: new XdsStreamState(++this.#streamIds), peer: call.getPeer() };
    this.#streams.add(connected);
    const forget = () => this.#streams.delete(connected);
    call.on('data', (req: Record<string, unknown>) => this.#onRequest(connected, req));
    call.on('end', () => {
      forget();
      call.end(); // the client half-closed: finish with OK
    });
    call.on('cancelled', forget);
    call.on('error', (err: Error) => {
      forget();
      this.#log.debug({ node: connected.state.nodeId, peer: connected.peer, err: err.message }, 'xDS stream error');
    });
    call.on('close', forget);
  }

  endAll(): void {
    for (const s of this.#streams) s.call.end();
    this.#streams.clear();
  }

  clients(): XdsClientStatus[] {
    return [...this.#streams].map((s) => ({
      nodeId: s.state.nodeId,
      streamId: s.state.id,
      peer: s.peer,
      types: s.state.status().map((t) => ({ ...t, upToDate: s.state.upToDate(t.typeUrl, this.snapshot(t.typeUrl)) })),
    }));
  }

  #onRequest(s: Connected, req: Record<string, unknown>): void {
    const outcome = s.state.onRequest(req);
    switch (outcome.kind) {
      case 'subscribe':
        this.#log.info(
          { node: s.state.nodeId, peer: s.peer, typeUrl: outcome.typeUrl, held: !this.#serving },
          'xDS client subscribed',
        );
        if (this.#serving) this.#push(s, outcome.typeUrl, true); // else answered by startServing()
        return;
      case 'ack':
        this.#log.debug({ ...outcome.event }, 'xDS ACK');
        this.#opts.onAck?.(outcome.event);
        return;
      case 'nack':
        this.#log.warn(
          { code: 'FERRY_XDS_NACKED' satisfies XdsErrorCode, ...outcome.event },
          'xDS client rejected a push',
        );
        this.#opts.onNack?.(outcome.event);
        return;
      case 'ignored':
        if (outcome.reason.startsWith('unknown type URL')) {
          this.#log.warn(
            { code: 'FERRY_XDS_BAD_REQUEST' satisfies XdsErrorCode, node: s.state.nodeId, peer: s.peer },
            outcome.reason,
          );
        } else logIgnored(this.#log, s.state, outcome.reason);
        return;
      default:
        assertNever(outcome);
    }
  }

  #push(s: Connected, typeUrl: XdsTypeUrl, always: boolean): void {
    const snapshot = this.snapshot(typeUrl);
    const response = s.state.nextResponse(typeUrl, snapshot, always);
    if (response === null) return;
    s.call.write(response);
    this.#opts.onPush?.({
      nodeId: s.state.nodeId,
      streamId: s.state.id,
      typeUrl,
      nonce: response.nonce,
      generation: snapshot.generation,
      resources: response.resources.map((r) => r.name),
      removed: response.removed_resources,
    });
  }
}

function sameVersions(a: ResourceMap, b: ResourceMap): boolean {
  if (a.size !== b.size) return false;
  for (const [name, res] of a) if (b.get(name)?.version !== res.version) return false;
  return true;
}

function assertNever(x: never): never {
  throw new Error(`unexpected ${JSON.stringify(x)}`);
}
