// Wire edge of Istio's certificate service (proto/ca.proto, docs/architecture.md "Identity"): the
// CreateCertificate method with a hand-written codec for its two messages (protobuf-wire.ts), and
// conversion to and from plain values. Shared by ca-server.ts and ca-client.ts; nothing else in Ferry sees
// protobuf shapes. The codec replaces @grpc/proto-loader, which parsed the .proto text in every ztunnel
// and waypoint at start (docs/performance.md, issue 12); test/unit/identity/ca-grpc-wire.test.ts checks it
// against protobufjs reading proto/ca.proto.
import type * as grpc from '@grpc/grpc-js';
import { fieldText, readFields, WIRE_LENGTH_DELIMITED, WIRE_VARINT, WireError, WireWriter } from './protobuf-wire.ts';

export const CA_SERVICE_NAME = 'istio.v1.auth.IstioCertificateService';
/** Metadata key (in the request's Struct) naming the SPIFFE ID a node proxy asks for on a pod's behalf. */
export const IMPERSONATED_IDENTITY_KEY = 'ImpersonatedIdentity';
/** A CSR is ~600 bytes; a few KiB bounds what an unauthenticated peer can make us buffer and parse. */
export const MAX_CA_MESSAGE_BYTES = 64 * 1024;

// Field numbers of proto/ca.proto and google/protobuf/struct.proto.
const REQUEST_CSR = 1;
const REQUEST_VALIDITY = 3;
const REQUEST_METADATA = 4;
const RESPONSE_CERT_CHAIN = 1;
const STRUCT_FIELDS = 1; // map<string, Value>: entries {1: key, 2: value}
const VALUE_STRING = 3;

/** The request as the codec hands it over: the shape parseCertificateRequest reads. */
interface WireRequest {
  csr: string;
  /** int64 as a decimal string. */
  validity_duration: string;
  metadata: { fields: Record<string, { stringValue?: string }> };
}

function decodeStruct(bytes: Uint8Array): WireRequest['metadata'] {
  const fields: Record<string, { stringValue?: string }> = Object.create(null);
  for (const entry of readFields(bytes)) {
    if (entry.field !== STRUCT_FIELDS || entry.wireType !== WIRE_LENGTH_DELIMITED) continue;
    let key = '';
    let value: { stringValue?: string } = {};
    for (const f of readFields(entry.bytes)) {
      if (f.field === 1) key = fieldText(f);
      else if (f.field === 2 && f.wireType === WIRE_LENGTH_DELIMITED) {
        value = {};
        // Only string values matter here; other kinds (numbers, nested structs) are skipped unread.
        for (const v of readFields(f.bytes)) if (v.field === VALUE_STRING) value = { stringValue: fieldText(v) };
      }
    }
    fields[key] = value;
  }
  return { fields };
}

/** Wire bytes of an IstioCertificateRequest → plain object. Throws WireError on malformed bytes. */
export function decodeCertificateRequestWire(bytes: Uint8Array): WireRequest {
  const out: WireRequest = { csr: '', validity_duration: '0', metadata: { fields: {} } };
  for (const f of readFields(bytes)) {
    if (f.field === REQUEST_CSR) out.csr = fieldText(f);
    else if (f.field === REQUEST_VALIDITY && f.wireType === WIRE_VARINT) {
      out.validity_duration = BigInt.asIntN(64, f.varint).toString();
    } else if (f.field === REQUEST_METADATA && f.wireType === WIRE_LENGTH_DELIMITED) {
      out.metadata = decodeStruct(f.bytes);
    }
  }
  return out;
}

/** Plain object (encodeCertificateRequest's shape) → wire bytes. */
export function encodeCertificateRequestWire(value: unknown): Buffer {
  const obj = isRecord(value) ? value : {};
  const w = new WireWriter();
  if (typeof obj.csr === 'string' && obj.csr !== '') w.string(REQUEST_CSR, obj.csr);
  const text = typeof obj.validity_duration === 'string' ? obj.validity_duration : '';
  const validity = /^-?\d{1,19}$/.test(text) ? BigInt.asIntN(64, BigInt(text)) : 0n;
  if (validity !== 0n) w.varint(REQUEST_VALIDITY, validity);
  const fields = isRecord(obj.metadata) && isRecord(obj.metadata.fields) ? obj.metadata.fields : {};
  const struct = new WireWriter();
  for (const [key, v] of Object.entries(fields)) {
    const text = isRecord(v) && typeof v.stringValue === 'string' ? v.stringValue : undefined;
    const entry = new WireWriter().string(1, key);
    entry.bytes(2, text === undefined ? Buffer.alloc(0) : new WireWriter().string(VALUE_STRING, text).finish());
    struct.bytes(STRUCT_FIELDS, entry.finish());
  }
  if (Object.keys(fields).length > 0) w.bytes(REQUEST_METADATA, struct.finish());
  return w.finish();
}

/** Wire bytes of an IstioCertificateResponse → `{ cert_chain }`. Throws WireError on malformed bytes. */
export function decodeCertificateResponseWire(bytes: Uint8Array): { cert_chain: string[] } {
  const chain: string[] = [];
  for (const f of readFields(bytes)) if (f.field === RESPONSE_CERT_CHAIN) chain.push(fieldText(f));
  return { cert_chain: chain };
}

/** `{ cert_chain }` → wire bytes. */
export function encodeCertificateResponseWire(value: unknown): Buffer {
  const w = new WireWriter();
  const chain = isRecord(value) && Array.isArray(value.cert_chain) ? value.cert_chain : [];
  for (const pem of chain) if (typeof pem === 'string') w.string(RESPONSE_CERT_CHAIN, pem);
  return w.finish();
}

/** Deserializers run on peer bytes inside grpc-js: a malformed message becomes an error, not a crash. */
function deserializeWith<T>(decode: (b: Uint8Array) => T): (b: Buffer) => T {
  return (bytes) => {
    try {
      return decode(bytes);
    } catch (err) {
      throw err instanceof WireError ? err : new WireError(String(err));
    }
  };
}

const CA_SERVICE: grpc.ServiceDefinition = {
  CreateCertificate: {
    path: `/${CA_SERVICE_NAME}/CreateCertificate`,
    requestStream: false,
    responseStream: false,
    originalName: 'CreateCertificate',
    requestSerialize: encodeCertificateRequestWire,
    requestDeserialize: deserializeWith(decodeCertificateRequestWire),
    responseSerialize: encodeCertificateResponseWire,
    responseDeserialize: deserializeWith(decodeCertificateResponseWire),
  },
};

/** The CreateCertificate service definition (for grpc.Server#addService and the client's unary call). */
export async function loadCaServiceDefinition(): Promise<grpc.ServiceDefinition> {
  return CA_SERVICE;
}

/** A CreateCertificate request as Ferry sees it, after the wire shape is checked. */
export interface CertificateRequest {
  readonly csrPem: string;
  /** Seconds; 0 when absent or not a number. */
  readonly validitySeconds: number;
  readonly impersonatedIdentity: string | undefined;
}

/** Parses the decoded protobuf object of an IstioCertificateRequest. Never throws. */
export function parseCertificateRequest(wire: unknown): CertificateRequest {
  const obj = isRecord(wire) ? wire : {};
  const csrPem = typeof obj.csr === 'string' ? obj.csr : '';
  const validity = Number(obj.validity_duration ?? 0);
  return {
    csrPem,
    validitySeconds: Number.isFinite(validity) ? validity : 0,
    impersonatedIdentity: readStructString(obj.metadata, IMPERSONATED_IDENTITY_KEY),
  };
}

/** The protobuf object of an IstioCertificateRequest. */
export function encodeCertificateRequest(req: CertificateRequest): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  if (req.impersonatedIdentity !== undefined) {
    fields[IMPERSONATED_IDENTITY_KEY] = { stringValue: req.impersonatedIdentity };
  }
  return { csr: req.csrPem, validity_duration: String(Math.floor(req.validitySeconds)), metadata: { fields } };
}

/** Parses the decoded IstioCertificateResponse: the PEM chain, or null when the shape is wrong. */
export function parseCertificateResponse(wire: unknown): string[] | null {
  if (!isRecord(wire) || !Array.isArray(wire.cert_chain)) return null;
  const chain: string[] = [];
  for (const item of wire.cert_chain) {
    if (typeof item !== 'string') return null;
    chain.push(item);
  }
  return chain;
}

function readStructString(struct: unknown, key: string): string | undefined {
  if (!isRecord(struct) || !isRecord(struct.fields)) return undefined;
  const value = struct.fields[key];
  if (!isRecord(value)) return undefined;
  return typeof value.stringValue === 'string' ? value.stringValue : undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}
