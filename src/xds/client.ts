// The ztunnel's delta xDS client (docs/architecture.md "Configuration distribution (delta xDS)", "Failure semantics"): one DeltaAggregatedResources stream to the
// controller, wildcard subscriptions to Address and Authorization, each response converted whole
// (xds-client-state.ts) then applied with one MeshStore.replace and ACKed; a bad resource NACKs the
// response and changes nothing. Reconnects with capped, fully jittered backoff (xds-backoff.ts) and
// initial_resource_versions, each attempt on a fresh gRPC channel so that only that schedule decides when
// the next connect happens; while the controller is away the store keeps the last good config. Readiness
// waits on whenSynced().

import * as grpc from '@grpc/grpc-js';
import type { MeshStore } from '../mesh/mesh-store.ts';
import { type Logger, silentLogger } from '../runtime/logger.ts';
import { DEFAULT_XDS_BACKOFF, type ReconnectBackoff, reconnectDelayMs } from './backoff.ts';
import {
  type ApplyOutcome,
  applyDeltaResponse,
  EMPTY_HELD_STATE,
  heldVersions,
  meshConfigOf,
  type XdsHeldState,
} from './client-state.ts';
import type { XdsErrorCode } from './errors.ts';
import {
  DELTA_ADS_PATH,
  decodeMessage,
  encodeMessage,
  isXdsTypeUrl,
  loadXdsProtos,
  NACK_STATUS_CODE,
  type WireDeltaRequest,
  type XdsProtos,
  type XdsTypeUrl,
  ZTUNNEL_TYPE_URLS,
} from './proto.ts';

/** A full mesh snapshot can be large (tens of thousands of workloads); bound it well above that. */
export const MAX_XDS_RESPONSE_BYTES = 256 * 1024 * 1024;
// Detects a controller that vanished without closing the connection (no FIN: node lost, partition).
const KEEPALIVE_MS = 30_000;
// A dial that has not produced a usable HTTP/2 connection by then is abandoned and retried on the backoff
// schedule: a controller that accepts TCP but never answers (stopped, hung, a blackholed address) kept
// the stream "connecting" indefinitely, since gRPC has no connect timeout of its own and keepalive
// starts only once connected.
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export interface XdsClientOptions {
  /** Controller address `host:port` (IPv6 as `[::1]:15012`). */
  readonly address: string;
  /** PEM root(s) to verify the controller's certificate; null = plaintext (tests, local mode). */
  readonly tls: { readonly rootCertPem: string; readonly serverName?: string } | null;
  /** Node.id; Istio's form is `ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`, Ferry's `ztunnel~<ip>~<node>`. */
  readonly nodeId: string;
  /** Sent as Node.metadata NODE_NAME. */
  readonly nodeName: string;
  readonly clusterId?: string;
  readonly store: MeshStore;
  readonly log?: Logger;
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** How long one attempt may wait for the connection (TCP, TLS, HTTP/2) before it is retried; 10 s. */
  readonly connectTimeoutMs?: number;
  /** Types to subscribe to (wildcard); default Address and Authorization (a ztunnel). */
  readonly types?: readonly XdsTypeUrl[];
  /** Node.user_agent_name; default ferry-ztunnel. */
  readonly userAgent?: string;
  /** Called with everything held after each accepted response, before the ACK (waypoints read L7 here). */
  readonly onHeld?: (held: XdsHeldState) => void;
  /** Called after each response was handled (applied and ACKed, or NACKed). */
  readonly onResponse?: (event: XdsResponseEvent) => void;
}

export type XdsResponseEvent =
  | {
      readonly accepted: true;
      readonly typeUrl: XdsTypeUrl;
      readonly nonce: string;
      readonly updated: readonly string[];
      readonly removed: readonly string[];
      readonly meshVersion: number;
    }
  | { readonly accepted: false; readonly typeUrl: string; readonly nonce: string; readonly error: string };

type Stream = grpc.ClientDuplexStream<WireDeltaRequest, unknown>;

/** Connection lifecycle; one transition at a time, stale streams ignored by identity. */
type ConnState =
  | { readonly phase: 'idle' }
  | { readonly phase: 'connecting'; readonly stream: Stream; readonly since: number; readonly timer: NodeJS.Timeout }
  | { readonly phase: 'connected'; readonly stream: Stream; readonly since: number }
  | { readonly phase: 'backoff'; readonly timer: NodeJS.Timeout; readonly delayMs: number }
  | { readonly phase: 'closed' };

export interface XdsTypeStatus {
  readonly typeUrl: XdsTypeUrl;
  readonly resources: number;
  readonly synced: boolean;
  readonly lastAcceptedNonce: string | null;
  readonly lastAcceptedAt: string | null;
  readonly lastRejected: { readonly nonce: string; readonly error: string; readonly at: string } | null;
}

export interface XdsClientStatus {
  readonly address: string;
  readonly nodeId: string;
  readonly phase: ConnState['phase'];
  readonly connectedSince: string | null;
  readonly streams: number;
  readonly lastError: string | null;
  readonly synced: boolean;
  readonly types: readonly XdsTypeStatus[];
}

interface TypeBook {
  synced: boolean;
  lastAcceptedNonce: string | null;
  lastAcceptedAt: Date | null;
  lastRejected: { nonce: string; error: string; at: Date } | null;
}

export class XdsClient implements AsyncDisposable {
  readonly #opts: XdsClientOptions;
  readonly #log: Logger;
  readonly #backoff: ReconnectBackoff;
  readonly #synced = Promise.withResolvers<void>();
  readonly #books = new Map<XdsTypeUrl, TypeBook>();
  #protos: XdsProtos | null = null;
  #grpc: grpc.Client | null = null;
  #channel: { readonly credentials: grpc.ChannelCredentials; readonly options: grpc.ChannelOptions } | null = null;
  #state: ConnState = { phase: 'idle' };
  #held: XdsHeldState = EMPTY_HELD_STATE;
  /** Streams cancelled by their connect deadline (named so in the log instead of "Cancelled on client"). */
  readonly #timedOut = new WeakSet<Stream>();
  /** Failed attempts since the last working stream: picks the backoff ceiling. */
  #attempt = 0;
  /** When the last working stream ended (for the reconnect log line); null while connected or never. */
  #lostAt: number | null = null;
  #streams = 0;
  #lastError: string | null = null;

  constructor(opts: XdsClientOptions) {
    this.#opts = opts;
    this.#log = (opts.log ?? silentLogger).child({ scope: 'xds', xds: opts.address });
    this.#backoff = { ...DEFAULT_XDS_BACKOFF, ...opts.backoff };
    for (const t of opts.types ?? ZTUNNEL_TYPE_URLS) {
      this.#books.set(t, { synced: false, lastAcceptedNonce: null, lastAcceptedAt: null, lastRejected: null });
    }
    this.#synced.promise.catch(() => {}); // rejected only by close(); callers of whenSynced see it
  }

  /** Loads the protos and opens the first stream; does not wait for config (see whenSynced). */
  async start(): Promise<void> {
    if (this.#state.phase !== 'idle') throw new Error('XdsClient.start called twice');
    const protos = await loadXdsProtos();
    if (this.#state.phase !== 'idle') return; // closed while loading
    this.#protos = protos;
    const credentials =
      this.#opts.tls === null
        ? grpc.credentials.createInsecure()
        : grpc.credentials.createSsl(Buffer.from(this.#opts.tls.rootCertPem));
    const options: grpc.ChannelOptions = {
      'grpc.max_receive_message_length': MAX_XDS_RESPONSE_BYTES,
      'grpc.keepalive_time_ms': KEEPALIVE_MS,
      'grpc.keepalive_timeout_ms': 10_000,
      // Our backoff decides when to connect: a failed attempt's channel is closed and the next attempt gets a
      // new one, whose own subchannel (not one shared from the global pool) has no backoff state. Without
      // this, grpc-js's reconnect backoff (±20% jitter on top of its max) came on top of ours.
      'grpc.use_local_subchannel_pool': 1,
      'grpc.initial_reconnect_backoff_ms': this.#backoff.initialMs,
      'grpc.max_reconnect_backoff_ms': this.#backoff.maxMs,
    };
    if (this.#opts.tls?.serverName !== undefined) options['grpc.ssl_target_name_override'] = this.#opts.tls.serverName;
    this.#channel = { credentials, options };
    this.#open();
  }

  /** Resolves once each type has had one accepted (ACKed) response; rejects if closed first or on abort. */
  whenSynced(signal?: AbortSignal): Promise<void> {
    if (signal === undefined) return this.#synced.promise;
    signal.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#synced.promise.then(
        () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  get synced(): boolean {
    return [...this.#books.values()].every((b) => b.synced);
  }

  /** For the admin /config_dump. */
  status(): XdsClientStatus {
    const s = this.#state;
    return {
      address: this.#opts.address,
      nodeId: this.#opts.nodeId,
      phase: s.phase,
      connectedSince: s.phase === 'connected' ? new Date(s.since).toISOString() : null,
      streams: this.#streams,
      lastError: this.#lastError,
      synced: this.synced,
      types: [...this.#books].map(([typeUrl, b]) => ({
        typeUrl,
        resources: Object.keys(heldVersions(this.#held, typeUrl)).length,
        synced: b.synced,
        lastAcceptedNonce: b.lastAcceptedNonce,
        lastAcceptedAt: b.lastAcceptedAt?.toISOString() ?? null,
        lastRejected: b.lastRejected === null ? null : { ...b.lastRejected, at: b.lastRejected.at.toISOString() },
      })),
    };
  }

  /** Stops: cancels the stream and any pending reconnect. The store keeps the last config. */
  async close(): Promise<void> {
    const s = this.#state;
    if (s.phase === 'closed') return;
    this.#state = { phase: 'closed' };
    if (s.phase === 'backoff' || s.phase === 'connecting') clearTimeout(s.timer);
    if (s.phase === 'connecting' || s.phase === 'connected') s.stream.cancel();
    this.#grpc?.close();
    if (!this.synced) this.#synced.reject(new Error('xDS client closed before the first sync'));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #open(): void {
    const protos = this.#protos;
    const channel = this.#channel;
    if (protos === null || channel === null) return;
    this.#grpc ??= new grpc.Client(this.#opts.address, channel.credentials, channel.options);
    const client = this.#grpc;
    const method = protos.service.DeltaAggregatedResources;
    if (method === undefined) throw new Error('DeltaAggregatedResources missing from the service definition');
    const stream: Stream = client.makeBidiStreamRequest(
      DELTA_ADS_PATH,
      (value: WireDeltaRequest) => encodeMessage(protos.request, value),
      (bytes: Buffer) => decodeMessage(protos.response, bytes),
    );
    this.#streams++;
    const timeoutMs = this.#opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const timer = setTimeout(() => this.#connectTimedOut(stream), timeoutMs);
    timer.unref();
    this.#state = { phase: 'connecting', stream, since: Date.now(), timer };
    stream.on('data', (response: unknown) => this.#onResponse(stream, response));
    stream.on('error', () => {}); // the 'status' event below carries the outcome; this keeps errors from throwing
    stream.on('status', (status: grpc.StatusObject) => this.#onStreamEnd(stream, status));
    const node = {
      id: this.#opts.nodeId,
      cluster: this.#opts.clusterId ?? '',
      metadata: { fields: { NODE_NAME: { stringValue: this.#opts.nodeName } } },
      user_agent_name: this.#opts.userAgent ?? 'ferry-ztunnel',
    };
    for (const typeUrl of this.#books.keys()) {
      // Wildcard: an empty subscribe list on the first request of a type (Envoy delta xDS).
      stream.write({ node, type_url: typeUrl, initial_resource_versions: heldVersions(this.#held, typeUrl) });
    }
  }

  #current(stream: Stream): boolean {
    const s = this.#state;
    return (s.phase === 'connecting' || s.phase === 'connected') && s.stream === stream;
  }

  #onResponse(stream: Stream, response: unknown): void {
    if (!this.#current(stream) || this.#protos === null) return;
    if (this.#state.phase === 'connecting') {
      clearTimeout(this.#state.timer);
      const now = Date.now();
      this.#state = { phase: 'connected', stream, since: now };
      this.#attempt = 0; // a working stream resets the backoff
      const fields: Record<string, unknown> = { streams: this.#streams };
      if (this.#lostAt !== null) fields.disconnectedMs = now - this.#lostAt;
      this.#lostAt = null;
      this.#log.info(fields, 'xDS stream connected');
    }
    const outcome = applyDeltaResponse(this.#protos, this.#held, response);
    if (!outcome.ok) {
      this.#reject(stream, outcome);
      return;
    }
    // Apply first, ACK after: the controller's ACK means "this ztunnel serves it".
    this.#held = outcome.state;
    let meshVersion = this.#opts.store.view.version;
    try {
      const view = this.#opts.store.replace(meshConfigOf(outcome.state));
      meshVersion = view.version;
      for (const warning of view.warnings) this.#log.debug({ typeUrl: outcome.typeUrl }, warning);
    } catch (err) {
      // MeshStore throws only after the new view is in place (a change listener failed): still applied.
      this.#log.error({ err: String(err), typeUrl: outcome.typeUrl }, 'mesh change listener failed');
      meshVersion = this.#opts.store.view.version;
    }
    try {
      this.#opts.onHeld?.(outcome.state);
    } catch (err) {
      this.#log.error({ err: String(err), typeUrl: outcome.typeUrl }, 'xDS onHeld listener failed');
    }
    stream.write({ type_url: outcome.typeUrl, response_nonce: outcome.nonce });
    const book = this.#books.get(outcome.typeUrl);
    if (book !== undefined) {
      book.synced = true;
      book.lastAcceptedNonce = outcome.nonce;
      book.lastAcceptedAt = new Date();
    }
    if (this.synced) this.#synced.resolve();
    this.#log.debug(
      {
        typeUrl: outcome.typeUrl,
        nonce: outcome.nonce,
        updated: outcome.updated.length,
        removed: outcome.removed.length,
      },
      'xDS response applied',
    );
    this.#opts.onResponse?.({
      accepted: true,
      typeUrl: outcome.typeUrl,
      nonce: outcome.nonce,
      updated: outcome.updated,
      removed: outcome.removed,
      meshVersion,
    });
  }

  #reject(stream: Stream, outcome: Extract<ApplyOutcome, { ok: false }>): void {
    const { error } = outcome;
    this.#log.warn(
      {
        code: error.code,
        typeUrl: outcome.typeUrl,
        nonce: outcome.nonce,
        resource: error.resource,
        field: error.field,
      },
      `xDS resource rejected; keeping the last good config: ${error.message}`,
    );
    stream.write({
      type_url: outcome.typeUrl,
      response_nonce: outcome.nonce,
      error_detail: { code: NACK_STATUS_CODE, message: `${error.code}: ${error.message}` },
    });
    const book = isXdsTypeUrl(outcome.typeUrl) ? this.#books.get(outcome.typeUrl) : undefined;
    if (book !== undefined) book.lastRejected = { nonce: outcome.nonce, error: error.message, at: new Date() };
    this.#opts.onResponse?.({ accepted: false, typeUrl: outcome.typeUrl, nonce: outcome.nonce, error: error.message });
  }

  #onStreamEnd(stream: Stream, status: grpc.StatusObject): void {
    if (!this.#current(stream)) return; // a stale stream, or closed
    if (this.#state.phase === 'connecting') clearTimeout(this.#state.timer);
    if (this.#state.phase === 'connected') this.#lostAt = Date.now();
    const attempt = this.#attempt;
    const delayMs = reconnectDelayMs(attempt, this.#backoff, Math.random());
    this.#attempt = attempt + 1;
    // The next attempt dials on a new channel (see start()): this one may be in its own backoff.
    this.#grpc?.close();
    this.#grpc = null;
    const details = this.#timedOut.has(stream)
      ? `no connection to the controller within ${this.#opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS} ms`
      : status.details;
    this.#lastError = `${grpc.status[status.code] ?? status.code}: ${details}`;
    this.#log.warn(
      { code: 'FERRY_XDS_STREAM_FAILED' satisfies XdsErrorCode, grpcStatus: status.code, details, attempt, delayMs },
      'xDS stream ended; keeping the last config and reconnecting',
    );
    const timer = setTimeout(() => this.#reconnect(), delayMs);
    timer.unref();
    this.#state = { phase: 'backoff', timer, delayMs };
  }

  #reconnect(): void {
    if (this.#state.phase !== 'backoff') return;
    this.#open();
  }

  /** The attempt's connect deadline passed: give up on it unless the channel got connected meanwhile. */
  #connectTimedOut(stream: Stream): void {
    if (!this.#current(stream) || this.#state.phase !== 'connecting') return;
    const channel = this.#grpc?.getChannel();
    // Connected but waiting for the first response (a large snapshot): keepalive covers that phase.
    if (channel?.getConnectivityState(false) === grpc.connectivityState.READY) return;
    this.#timedOut.add(stream);
    stream.cancel(); // ends with CANCELLED: #onStreamEnd backs off and retries on a new channel
  }
}
