// Istio's standard traffic labels (the `istio_*` metrics' label set), filled from the mesh's domain
// objects. Shared by both proxies: the ztunnel reports L4 connections with them, the waypoint L7 requests.
import { formatSpiffeId, type SpiffeId } from '../identity/spiffe-id.ts';
import type { Service, Workload } from './types.ts';

export const TRAFFIC_LABEL_NAMES = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_service',
  'destination_service_namespace',
  'destination_service_name',
  'destination_workload',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

export type TrafficLabelName = (typeof TRAFFIC_LABEL_NAMES)[number];
export type TrafficLabels = { readonly [K in TrafficLabelName]: string };

/** `source` = the outbound side reports, `destination` = the inbound side, `waypoint` = an L7 waypoint (Istio's reporter label). */
export type Reporter = 'source' | 'destination' | 'waypoint';

/** Istio's response_flags values; '-' means no failure. */
export type ResponseFlags =
  | '-'
  | 'DENY'
  | 'CONNECT'
  | 'TLS_FAILURE'
  | 'H2_HANDSHAKE_FAILURE'
  | 'NETWORK_POLICY'
  | 'IDENTITY_ERROR'
  | 'CERT_REVOKED';

const UNKNOWN = 'unknown';

/** All labels "unknown", request_protocol tcp, response_flags '-' (ztunnel's DefaultedUnknown). */
export function defaultTrafficLabels(reporter: Reporter): TrafficLabels {
  const labels = Object.fromEntries(TRAFFIC_LABEL_NAMES.map((n) => [n, UNKNOWN])) as Record<TrafficLabelName, string>;
  labels.reporter = reporter;
  labels.request_protocol = 'tcp';
  labels.response_flags = '-';
  return labels;
}

export interface TrafficLabelInput {
  readonly reporter: Reporter;
  readonly sourceWorkload?: Workload | null;
  /** The peer identity proven by mTLS (or, outbound, the identity we present). Never guessed. */
  readonly sourceIdentity?: SpiffeId | null;
  readonly destinationWorkload?: Workload | null;
  readonly destinationService?: Service | null;
  /** The identity the destination proved (or is expected to prove, outbound). */
  readonly destinationIdentity?: SpiffeId | null;
  readonly mtls: boolean;
}

// Empty strings from config become "unknown": an empty label value is the same as an absent label in
// Prometheus, which would merge series.
const orUnknown = (v: string): string => (v === '' ? UNKNOWN : v);

/** Fills Istio's traffic labels from domain objects. Principals come only from the explicit identities. */
export function trafficLabelsFor(input: TrafficLabelInput): TrafficLabels {
  const l = defaultTrafficLabels(input.reporter) as Record<TrafficLabelName, string>;
  const src = input.sourceWorkload;
  if (src) {
    l.source_workload = orUnknown(src.workloadName);
    l.source_canonical_service = orUnknown(src.canonicalName);
    l.source_canonical_revision = orUnknown(src.canonicalRevision);
    l.source_workload_namespace = orUnknown(src.namespace);
    l.source_app = orUnknown(src.canonicalName);
    l.source_version = orUnknown(src.canonicalRevision);
    l.source_cluster = orUnknown(src.clusterId);
  }
  if (input.sourceIdentity) l.source_principal = formatSpiffeId(input.sourceIdentity);
  const svc = input.destinationService;
  if (svc) {
    l.destination_service = orUnknown(svc.hostname);
    l.destination_service_namespace = orUnknown(svc.namespace);
    l.destination_service_name = orUnknown(svc.name);
  }
  const dst = input.destinationWorkload;
  if (dst) {
    l.destination_workload = orUnknown(dst.workloadName);
    l.destination_canonical_service = orUnknown(dst.canonicalName);
    l.destination_canonical_revision = orUnknown(dst.canonicalRevision);
    l.destination_workload_namespace = orUnknown(dst.namespace);
    l.destination_app = orUnknown(dst.canonicalName);
    l.destination_version = orUnknown(dst.canonicalRevision);
    l.destination_cluster = orUnknown(dst.clusterId);
  }
  if (input.destinationIdentity) l.destination_principal = formatSpiffeId(input.destinationIdentity);
  l.connection_security_policy = input.mtls ? 'mutual_tls' : UNKNOWN;
  return l;
}
