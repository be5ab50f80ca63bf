// Wire edge of Istio's certificate service (proto/ca.proto, docs/architecture.md "Identity"): loads the service definition
// with @grpc/proto-loader and converts messages to and from plain values. Shared by ca-server.ts and
// ca-client.ts; nothing else in Ferry sees protobuf shapes.
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const CA_PROTO_PATH = fileURLToPath(new URL('../../proto/ca.proto', import.meta.url));
export const CA_SERVICE_NAME = 'istio.v1.auth.IstioCertificateService';
/** Metadata key (in the request's Struct) naming the SPIFFE ID a node proxy asks for on a pod's behalf. */
export const IMPERSONATED_IDENTITY_KEY = 'ImpersonatedIdentity';
/** A CSR is ~600 bytes; a few KiB bounds what an unauthenticated peer can make us buffer and parse. */
export const MAX_CA_MESSAGE_BYTES = 64 * 1024;

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String, // int64 validity_duration arrives as a decimal string; parsed and clamped by policy
  enums: String,
  defaults: true,
  oneofs: true,
};

/** Loads the CreateCertificate service definition (async: no sync I/O outside startup helpers). */
export async function loadCaServiceDefinition(): Promise<grpc.ServiceDefinition> {
  const pkg = await protoLoader.load(CA_PROTO_PATH, LOADER_OPTIONS);
  const def = pkg[CA_SERVICE_NAME];
  if (def === undefined || !('CreateCertificate' in def)) throw new Error(`${CA_PROTO_PATH} lacks ${CA_SERVICE_NAME}`);
  return def as grpc.ServiceDefinition;
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
