// One access-log line and one set of metric updates per proxied connection, at completion (ztunnel's
// `ConnectionResult`, istio/ztunnel:src/proxy/metrics.rs; STYLE.md §3 table for levels). The proxy shell
// calls startConnection() when it accepts, setDestination() once it knows where the connection goes,
// recordSent/recordReceived (or finish totals) for bytes, and exactly one of finish()/fail(). Metrics are
// opened when the destination is known (so opened/closed series always pair up), or at the end for
// connections that failed before. Never logs keys, certificates or tokens: only SPIFFE IDs and addresses.

import type { ProxyErrorCode } from '../errors.ts';
import { formatSpiffeId, type SpiffeId } from '../identity/spiffe-id.ts';
import { TlsRefusedError } from '../identity/tls-refusal.ts';
import { type Reporter, type ResponseFlags, trafficLabelsFor } from '../mesh/traffic-labels.ts';
import type { PolicyKey, Service, Workload } from '../mesh/types.ts';
import type { Logger } from '../runtime/logger.ts';
import type { ConnectionRecorder, ZtunnelMetrics } from './metrics.ts';

export type Direction = 'inbound' | 'outbound';

export interface DestinationInfo {
  /** L4 next hop, `ip:port` (outbound HBONE: `podIP:15008`, or a waypoint). */
  readonly addr: string;
  /** The HBONE `:authority` (`ip:port`) when tunnelled. */
  readonly hboneAddr?: string | null;
  readonly workload?: Workload | null;
  readonly service?: Service | null;
  /** Identity the destination proved or is required to prove (logged only with mTLS). */
  readonly identity?: SpiffeId | null;
}

export interface ConnectionInfo {
  readonly direction: Direction;
  /** Downstream peer, `ip:port`. */
  readonly srcAddr: string;
  readonly source?: Workload | null;
  /** mTLS peer identity (inbound) or the identity we present (outbound); logged only with mTLS. */
  readonly sourceIdentity?: SpiffeId | null;
  readonly mtls: boolean;
  readonly destination?: DestinationInfo;
}

/** Anything with a stable code: ProxyError, or another area's typed error. */
export interface CodedError {
  readonly code: string;
  readonly message: string;
  readonly cause?: unknown;
}

export interface FailOptions {
  /** Overrides the flags derived from the error code. */
  readonly responseFlags?: ResponseFlags;
  /** The DENY policy (ns/name) for explicit denials; never sent to the peer, only logged. */
  readonly policy?: PolicyKey;
}

export interface ByteTotals {
  /** Source → destination (request direction). */
  readonly bytesSent: number;
  /** Destination → source (response direction). */
  readonly bytesReceived: number;
}

export interface AccessLogOptions {
  readonly logger: Logger;
  readonly metrics: ZtunnelMetrics;
  /** Monotonic milliseconds; injectable for tests. */
  readonly now?: () => number;
}

const DENY_CODES: ReadonlySet<string> = new Set<ProxyErrorCode>([
  'FERRY_AUTHZ_DENIED',
  'FERRY_AUTHZ_NOT_ALLOWED',
  'FERRY_AUTHZ_LATE_REJECTION',
]);
const IDENTITY_CODES: ReadonlySet<string> = new Set<ProxyErrorCode>([
  'FERRY_HBONE_PEER_IDENTITY_MISMATCH',
  'FERRY_HBONE_TRUST_DOMAIN_MISMATCH',
  'FERRY_NO_CERTIFICATE',
]);

/** Logged (at error level) for a result disposed without finish()/fail(): a bug in the proxy shell. */
export const UNRECORDED_CODE = 'FERRY_ACCESS_LOG_UNRECORDED';

/** Istio response_flags for a failure code: DENY for policy, TLS/identity errors, else CONNECT. */
export function responseFlagsFor(code: string): ResponseFlags {
  if (DENY_CODES.has(code)) return 'DENY';
  if (IDENTITY_CODES.has(code)) return 'IDENTITY_ERROR';
  if (code === 'FERRY_HBONE_HANDSHAKE_FAILED') return 'TLS_FAILURE';
  return 'CONNECT';
}

/** Creates ConnectionResults; one per process (or per test ztunnel). */
export class AccessLog {
  readonly #logger: Logger;
  readonly #metrics: ZtunnelMetrics;
  readonly #now: () => number;

  constructor(opts: AccessLogOptions) {
    this.#logger = opts.logger.child({ scope: 'access' });
    this.#metrics = opts.metrics;
    this.#now = opts.now ?? performance.now.bind(performance);
  }

  /** Starts tracking one connection; the result must end with finish() or fail() (or be disposed). */
  startConnection(info: ConnectionInfo): ConnectionResult {
    return new ConnectionResult(info, this.#logger, this.#metrics, this.#now);
  }
}

type ResultState = { readonly phase: 'open' } | { readonly phase: 'done' };

export class ConnectionResult implements Disposable {
  readonly #info: ConnectionInfo;
  readonly #logger: Logger;
  readonly #metrics: ZtunnelMetrics;
  readonly #now: () => number;
  readonly #start: number;
  #destination: DestinationInfo | undefined;
  #recorder: ConnectionRecorder | null = null;
  // Bytes seen before the recorder exists (before setDestination); handed over when it is created.
  #earlySent = 0;
  #earlyReceived = 0;
  #state: ResultState = { phase: 'open' };

  constructor(info: ConnectionInfo, logger: Logger, metrics: ZtunnelMetrics, now: () => number) {
    this.#info = info;
    this.#logger = logger;
    this.#metrics = metrics;
    this.#now = now;
    this.#start = now();
    this.#destination = info.destination;
    if (info.destination !== undefined) this.#open();
  }

  get reporter(): Reporter {
    return this.#info.direction === 'outbound' ? 'source' : 'destination';
  }

  get bytesSent(): number {
    return this.#recorder === null ? this.#earlySent : this.#recorder.bytesSent;
  }

  get bytesReceived(): number {
    return this.#recorder === null ? this.#earlyReceived : this.#recorder.bytesReceived;
  }

  /** Sets where the connection goes and counts it as opened. Later calls update only the log fields. */
  setDestination(destination: DestinationInfo): void {
    if (this.#state.phase === 'done') return;
    this.#destination = destination;
    if (this.#recorder === null) this.#open();
  }

  /** Hot path: bytes forwarded source → destination. */
  recordSent(bytes: number): void {
    if (this.#recorder === null) this.#earlySent += bytes;
    else this.#recorder.recordSent(bytes);
  }

  /** Hot path: bytes forwarded destination → source. */
  recordReceived(bytes: number): void {
    if (this.#recorder === null) this.#earlyReceived += bytes;
    else this.#recorder.recordReceived(bytes);
  }

  /** Successful end. `totals` (e.g. from splice) replace what recordSent/recordReceived counted. */
  finish(totals?: ByteTotals): void {
    if (!this.#end(totals)) return;
    const recorder = this.#recorderForEnd();
    recorder.close('-');
    this.#logger.info(this.#fields(recorder), 'connection complete');
  }

  /** Failed end: error logged with its code (and cause chain), metrics closed with the failure flags. */
  fail(error: CodedError, opts: FailOptions = {}, totals?: ByteTotals): void {
    if (!this.#end(totals)) return;
    const recorder = this.#recorderForEnd();
    const flags = opts.responseFlags ?? responseFlagsFor(error.code);
    recorder.close(flags);
    const fields: Record<string, unknown> = this.#fields(recorder);
    fields.error = describeError(error);
    if (opts.policy !== undefined) fields.policy = opts.policy;
    // STYLE.md §3: the peer's fault (policy deny) is info; setup failures warn; a non-coded error is our bug.
    if (flags === 'DENY') this.#logger.info(fields, 'connection failed');
    else if (error.code.startsWith('FERRY_') && error.code !== UNRECORDED_CODE)
      this.#logger.warn(fields, 'connection failed');
    else
      this.#logger.error({ ...fields, stack: error instanceof Error ? error.stack : undefined }, 'connection failed');
  }

  /** A result dropped without finish/fail is a bug in the caller: record it as failed so nothing leaks. */
  [Symbol.dispose](): void {
    if (this.#state.phase === 'open') {
      this.fail({ code: UNRECORDED_CODE, message: 'connection ended without a recorded result' });
    }
  }

  #end(totals: ByteTotals | undefined): boolean {
    if (this.#state.phase === 'done') return false;
    this.#state = { phase: 'done' };
    if (totals !== undefined) {
      // Count only what was not counted yet, so callers may mix progress calls and final totals.
      this.recordSent(Math.max(0, totals.bytesSent - this.bytesSent));
      this.recordReceived(Math.max(0, totals.bytesReceived - this.bytesReceived));
    }
    return true;
  }

  #recorderForEnd(): ConnectionRecorder {
    return this.#recorder ?? this.#open();
  }

  #open(): ConnectionRecorder {
    const dst = this.#destination;
    const info = this.#info;
    const recorder = this.#metrics.openConnection(
      trafficLabelsFor({
        reporter: this.reporter,
        sourceWorkload: info.source ?? null,
        sourceIdentity: info.sourceIdentity ?? null,
        destinationWorkload: dst?.workload ?? null,
        destinationService: dst?.service ?? null,
        destinationIdentity: dst?.identity ?? null,
        mtls: info.mtls,
      }),
    );
    recorder.recordSent(this.#earlySent);
    recorder.recordReceived(this.#earlyReceived);
    this.#recorder = recorder;
    if (this.#logger.isLevelEnabled('debug')) this.#logger.debug(this.#fields(recorder), 'connection opened');
    return recorder;
  }

  #fields(recorder: ConnectionRecorder): Record<string, unknown> {
    const info = this.#info;
    const dst = this.#destination;
    const src = info.source;
    const fields: Record<string, unknown> = { 'src.addr': info.srcAddr };
    if (src) {
      fields['src.workload'] = src.name || src.canonicalName;
      fields['src.namespace'] = src.namespace;
    }
    // Identities are logged only when mTLS proved them (ztunnel filters the same way).
    if (info.mtls && info.sourceIdentity) fields['src.identity'] = formatSpiffeId(info.sourceIdentity);
    if (dst !== undefined) {
      fields['dst.addr'] = dst.addr;
      if (dst.hboneAddr) fields['dst.hbone_addr'] = dst.hboneAddr;
      if (dst.service) fields['dst.service'] = dst.service.hostname;
      if (dst.workload) {
        fields['dst.workload'] = dst.workload.name || dst.workload.canonicalName;
        fields['dst.namespace'] = dst.workload.namespace;
      } else if (dst.service) {
        fields['dst.namespace'] = dst.service.namespace;
      }
      if (info.mtls && dst.identity) fields['dst.identity'] = formatSpiffeId(dst.identity);
    }
    fields.direction = info.direction;
    fields.bytes_sent = recorder.bytesSent;
    fields.bytes_recv = recorder.bytesReceived;
    fields.duration = Math.round(this.#now() - this.#start);
    return fields;
  }
}

// Causes are walked a bounded number of times: a cyclic or deep cause chain must not stall the log line.
const MAX_CAUSES = 5;

function describeError(error: CodedError): Record<string, unknown> {
  const out: Record<string, unknown> = { code: error.code, message: error.message };
  if (error instanceof TlsRefusedError) out.reason = error.reason; // why the HBONE handshake failed
  const causes: string[] = [];
  let cause: unknown = error.cause;
  while (cause !== undefined && cause !== null && causes.length < MAX_CAUSES) {
    if (cause instanceof Error) {
      const code = (cause as { code?: unknown }).code;
      causes.push(typeof code === 'string' ? `${code}: ${cause.message}` : cause.message);
      cause = cause.cause;
    } else {
      causes.push(String(cause));
      break;
    }
  }
  if (causes.length > 0) out.cause = causes.join(' <- ');
  return out;
}
