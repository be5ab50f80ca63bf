// Wire edge of delta xDS (docs/architecture.md "Configuration distribution (delta xDS)"): loads proto/{discovery,workload,authorization}.proto with
// protobufjs and exposes the one gRPC method both sides speak, plus encode/decode of the resource bodies
// carried in `google.protobuf.Any`. Shared by the controller's server and the ztunnel's client; nothing
// else sees protobuf shapes. Decoding never trusts the peer: callers parse the plain objects it returns.
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

export const ADDRESS_TYPE_URL = 'type.googleapis.com/istio.workload.Address';
export const AUTHORIZATION_TYPE_URL = 'type.googleapis.com/istio.security.Authorization';
/** Ferry's waypoint config (proto/waypoint.proto); only waypoints subscribe to it. */
export const L7_TYPE_URL = 'type.googleapis.com/ferry.waypoint.v1.L7Resource';
export const XDS_TYPE_URLS = [ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, L7_TYPE_URL] as const;
/** What a ztunnel subscribes to. */
export const ZTUNNEL_TYPE_URLS: readonly XdsTypeUrl[] = [ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL];
export type XdsTypeUrl = (typeof XDS_TYPE_URLS)[number];

export const ADS_SERVICE_NAME = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const DELTA_ADS_PATH = `/${ADS_SERVICE_NAME}/DeltaAggregatedResources`;
/** grpc status code INVALID_ARGUMENT, used in a NACK's error_detail. */
export const NACK_STATUS_CODE = 3;

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));
const PROTO_FILES = ['discovery.proto', 'workload.proto', 'authorization.proto', 'waypoint.proto'].map(
  (f) => `${PROTO_DIR}${f}`,
);

// Plain objects out: enums by name (unknown numbers stay numbers), bytes as Buffer, every field present.
const TO_OBJECT: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

export function isXdsTypeUrl(v: unknown): v is XdsTypeUrl {
  return v === ADDRESS_TYPE_URL || v === AUTHORIZATION_TYPE_URL || v === L7_TYPE_URL;
}

/** The loaded message types. Immutable once loaded; load once per server or client. */
export interface XdsProtos {
  readonly root: protobuf.Root;
  readonly request: protobuf.Type;
  readonly response: protobuf.Type;
  readonly address: protobuf.Type;
  readonly authorization: protobuf.Type;
  readonly l7: protobuf.Type;
  /** The DeltaAggregatedResources method for grpc.Server#addService and grpc.Client. */
  readonly service: grpc.ServiceDefinition;
}

/** Loads the proto files (async: no sync I/O after startup). */
export async function loadXdsProtos(): Promise<XdsProtos> {
  const root = await new protobuf.Root().load(PROTO_FILES, { keepCase: true });
  const request = root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const response = root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  const service: grpc.ServiceDefinition = {
    DeltaAggregatedResources: {
      path: DELTA_ADS_PATH,
      requestStream: true,
      responseStream: true,
      originalName: 'DeltaAggregatedResources',
      requestSerialize: (value: unknown) => encodeMessage(request, value),
      requestDeserialize: (bytes: Buffer) => decodeMessage(request, bytes),
      responseSerialize: (value: unknown) => encodeMessage(response, value),
      responseDeserialize: (bytes: Buffer) => decodeMessage(response, bytes),
    },
  };
  return {
    root,
    request,
    response,
    address: root.lookupType('istio.workload.Address'),
    authorization: root.lookupType('istio.security.Authorization'),
    l7: root.lookupType('ferry.waypoint.v1.L7Resource'),
    service,
  };
}

/** Plain object (snake_case field names) → wire bytes. Throws on a shape protobufjs cannot encode: a bug. */
export function encodeMessage(type: protobuf.Type, value: unknown): Buffer {
  const message = type.fromObject(isRecord(value) ? value : {});
  return Buffer.from(type.encode(message).finish());
}

/** Wire bytes → plain object. Throws on malformed bytes (peer input: callers catch). */
export function decodeMessage(type: protobuf.Type, bytes: Uint8Array): Record<string, unknown> {
  return type.toObject(type.decode(bytes), TO_OBJECT);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Wire shapes Ferry sends (field names as in discovery.proto). */
export interface WireResource {
  readonly name: string;
  readonly version: string;
  readonly aliases?: readonly string[];
  readonly resource: { readonly type_url: string; readonly value: Uint8Array };
}

export interface WireDeltaResponse {
  readonly system_version_info: string;
  readonly type_url: string;
  readonly nonce: string;
  readonly resources: readonly WireResource[];
  readonly removed_resources: readonly string[];
}

export interface WireDeltaRequest {
  readonly node?: { readonly id: string; readonly cluster?: string; readonly metadata?: unknown };
  readonly type_url: string;
  readonly resource_names_subscribe?: readonly string[];
  readonly initial_resource_versions?: Readonly<Record<string, string>>;
  readonly response_nonce?: string;
  readonly error_detail?: { readonly code: number; readonly message: string };
}

export function stringField(obj: Record<string, unknown>, key: string): string {
  const v = obj[key];
  return typeof v === 'string' ? v : '';
}
