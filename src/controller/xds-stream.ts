// Per-stream delta xDS state on the controller (Envoy's incremental protocol, docs/architecture.md "Configuration distribution (delta xDS)"): for each
// type URL, whether the client subscribed (wildcard only), which resource versions it holds as far as we
// know (`known`: what we sent, or its initial_resource_versions), which it ACKed, and the unanswered
// responses by nonce. No I/O: XdsServer feeds requests in and writes the responses this returns.
// Invariant: a version is never sent twice on one stream, not even after a NACK (the client would reject
// the same bytes again; it gets the next version instead).
import type { Logger } from '../runtime/logger.ts';
import { isRecord, isXdsTypeUrl, stringField, type WireDeltaResponse, type XdsTypeUrl } from '../xds/proto.ts';
import type { ResourceMap } from './xds-resources.ts';

/** A client's ACK of one response. */
export interface XdsAckEvent {
  readonly nodeId: string;
  readonly streamId: number;
  readonly typeUrl: XdsTypeUrl;
  readonly nonce: string;
  /** Server generation of that type the ACKed response brought the client to. */
  readonly generation: number;
  /** Resources (added or updated) and removals in the ACKed response. */
  readonly resources: number;
  readonly removed: number;
}

export interface XdsNackEvent {
  readonly nodeId: string;
  readonly streamId: number;
  readonly typeUrl: XdsTypeUrl;
  readonly nonce: string;
  readonly error: string;
}

export interface XdsPushEvent {
  readonly nodeId: string;
  readonly streamId: number;
  readonly typeUrl: XdsTypeUrl;
  readonly nonce: string;
  readonly generation: number;
  readonly resources: readonly string[];
  readonly removed: readonly string[];
}

/** What the server currently serves for one type. */
export interface TypeSnapshot {
  readonly resources: ResourceMap;
  readonly generation: number;
}

interface Pending {
  readonly generation: number;
  readonly changes: ReadonlyMap<string, string | null>; // name → version, null = removed
}

interface TypeState {
  readonly known: Map<string, string>;
  readonly acked: Map<string, string>;
  readonly pending: Map<string, Pending>;
  ackedGeneration: number;
}

export interface StreamTypeStatus {
  readonly typeUrl: XdsTypeUrl;
  readonly acked: number;
  readonly ackedGeneration: number;
  readonly pendingNonces: number;
}

export type RequestOutcome =
  | { readonly kind: 'subscribe'; readonly typeUrl: XdsTypeUrl }
  | { readonly kind: 'ack'; readonly event: XdsAckEvent }
  | { readonly kind: 'nack'; readonly event: XdsNackEvent }
  | { readonly kind: 'ignored'; readonly reason: string };

export class XdsStreamState {
  readonly id: number;
  #nodeId = 'unknown';
  #nonces = 0;
  readonly #types = new Map<XdsTypeUrl, TypeState>();

  constructor(id: number) {
    this.id = id;
  }

  get nodeId(): string {
    return this.#nodeId;
  }

  subscribed(typeUrl: XdsTypeUrl): boolean {
    return this.#types.has(typeUrl);
  }

  /** Interprets one DeltaDiscoveryRequest (decoded plain object). */
  onRequest(req: Record<string, unknown>): RequestOutcome {
    if (isRecord(req.node) && typeof req.node.id === 'string' && req.node.id !== '') this.#nodeId = req.node.id;
    const typeUrl = req.type_url;
    if (!isXdsTypeUrl(typeUrl)) return { kind: 'ignored', reason: `unknown type URL ${JSON.stringify(typeUrl)}` };
    const nonce = stringField(req, 'response_nonce');
    let state = this.#types.get(typeUrl);
    if (nonce === '') {
      if (state !== undefined) return { kind: 'ignored', reason: 'already subscribed (only wildcard subscriptions)' };
      // First request of this type on this stream: the client tells what it holds (reconnect).
      const initial = isRecord(req.initial_resource_versions) ? req.initial_resource_versions : {};
      const known = new Map<string, string>();
      for (const [name, version] of Object.entries(initial)) if (typeof version === 'string') known.set(name, version);
      state = { known, acked: new Map(known), pending: new Map(), ackedGeneration: 0 };
      this.#types.set(typeUrl, state);
      return { kind: 'subscribe', typeUrl };
    }
    const pending = state?.pending.get(nonce);
    if (state === undefined || pending === undefined) return { kind: 'ignored', reason: `unknown nonce ${nonce}` };
    state.pending.delete(nonce);
    const detail = isRecord(req.error_detail) ? req.error_detail : null;
    if (detail !== null) {
      const error = stringField(detail, 'message') || `code ${String(detail.code)}`;
      return { kind: 'nack', event: { nodeId: this.#nodeId, streamId: this.id, typeUrl, nonce, error } };
    }
    let resources = 0;
    let removed = 0;
    for (const [name, version] of pending.changes) {
      if (version === null) {
        state.acked.delete(name);
        removed++;
      } else {
        state.acked.set(name, version);
        resources++;
      }
    }
    state.ackedGeneration = Math.max(state.ackedGeneration, pending.generation);
    const event = {
      nodeId: this.#nodeId,
      streamId: this.id,
      typeUrl,
      nonce,
      generation: pending.generation,
      resources,
      removed,
    };
    return { kind: 'ack', event };
  }

  /**
   * The response that brings this client from what it holds to `snapshot`, or null when nothing differs
   * (and `always` is false: the first response of a subscription is sent even empty, so the client can
   * report itself synced).
   */
  nextResponse(typeUrl: XdsTypeUrl, snapshot: TypeSnapshot, always: boolean): WireDeltaResponse | null {
    const state = this.#types.get(typeUrl);
    if (state === undefined) return null;
    const resources: WireDeltaResponse['resources'][number][] = [];
    const removed: string[] = [];
    const changes = new Map<string, string | null>();
    for (const [name, res] of snapshot.resources) {
      if (state.known.get(name) === res.version) continue;
      resources.push({
        name,
        version: res.version,
        aliases: res.aliases,
        resource: { type_url: typeUrl, value: res.value },
      });
      changes.set(name, res.version);
    }
    for (const name of state.known.keys()) {
      if (!snapshot.resources.has(name)) {
        removed.push(name);
        changes.set(name, null);
      }
    }
    if (changes.size === 0 && !always) {
      // Nothing to send: the client already holds this generation.
      if (state.pending.size === 0) state.ackedGeneration = Math.max(state.ackedGeneration, snapshot.generation);
      return null;
    }
    for (const [name, version] of changes) {
      if (version === null) state.known.delete(name);
      else state.known.set(name, version);
    }
    const nonce = `${this.id}-${++this.#nonces}`;
    state.pending.set(nonce, { generation: snapshot.generation, changes });
    return {
      system_version_info: String(snapshot.generation),
      type_url: typeUrl,
      nonce,
      resources,
      removed_resources: removed,
    };
  }

  status(): StreamTypeStatus[] {
    return [...this.#types].map(([typeUrl, s]) => ({
      typeUrl,
      acked: s.acked.size,
      ackedGeneration: s.ackedGeneration,
      pendingNonces: s.pending.size,
    }));
  }

  /** Whether every resource of `snapshot` is ACKed at its current version, and nothing else is held. */
  upToDate(typeUrl: XdsTypeUrl, snapshot: TypeSnapshot): boolean {
    const state = this.#types.get(typeUrl);
    if (state === undefined || state.acked.size !== snapshot.resources.size) return false;
    for (const [name, res] of snapshot.resources) if (state.acked.get(name) !== res.version) return false;
    return true;
  }
}

/** Logs an ignored request at debug: harmless (late ACK of an old nonce, duplicate subscribe). */
export function logIgnored(log: Logger, stream: XdsStreamState, reason: string): void {
  log.debug({ node: stream.nodeId, stream: stream.id }, `xDS request ignored: ${reason}`);
}
