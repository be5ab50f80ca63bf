// Flows for `ferry observe`: one record per connection, built from a ztunnel access-log line (the
// Hubble-observe idea over Ferry's own logs). Pure: text in, Flow or null out; formatting separate.

export type Verdict = 'allowed' | 'denied' | 'failed';

export interface Flow {
  readonly time: string;
  readonly node: string;
  /** 'inbound' lines are the destination ztunnel's view (they carry the verified peer identity). */
  readonly direction: 'inbound' | 'outbound';
  readonly source: string;
  readonly sourceNamespace: string | null;
  readonly destination: string;
  readonly destinationNamespace: string | null;
  readonly sourceIdentity: string | null;
  readonly destinationIdentity: string | null;
  /** mTLS (HBONE) or plaintext. */
  readonly security: 'mtls' | 'plaintext';
  readonly verdict: Verdict;
  /** For denials: the policy (ns/name) or the reason code. */
  readonly reason: string | null;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly durationMs: number;
}

type Line = Record<string, unknown>;

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

const DENY_CODES = new Set(['FERRY_AUTHZ_DENIED', 'FERRY_AUTHZ_NOT_ALLOWED', 'FERRY_AUTHZ_LATE_REJECTION']);

/** A Flow from one JSON log line, or null when the line is not a completed-connection access log. */
export function flowFromLogLine(text: string): Flow | null {
  let line: Line;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
    line = parsed as Line;
  } catch {
    return null;
  }
  if (line.scope !== 'access') return null;
  if (line.msg !== 'connection complete' && line.msg !== 'connection failed') return null;
  const direction = line.direction === 'outbound' ? 'outbound' : 'inbound';
  const error = (line.error ?? null) as { code?: unknown } | null;
  const code = error === null ? null : str(error.code);
  const verdict: Verdict = code === null ? 'allowed' : DENY_CODES.has(code) ? 'denied' : 'failed';
  const sourceIdentity = str(line['src.identity']);
  const hbone = str(line['dst.hbone_addr']) !== null;
  return {
    time: str(line.time) ?? '',
    node: str(line.node) ?? '',
    direction,
    source: str(line['src.workload']) ?? str(line['src.addr']) ?? 'unknown',
    sourceNamespace: str(line['src.namespace']),
    destination: str(line['dst.service']) ?? str(line['dst.workload']) ?? str(line['dst.addr']) ?? 'unknown',
    destinationNamespace: str(line['dst.namespace']),
    sourceIdentity,
    destinationIdentity: str(line['dst.identity']),
    security: (direction === 'inbound' ? sourceIdentity !== null : hbone) ? 'mtls' : 'plaintext',
    verdict,
    reason: str(line.policy) ?? code,
    bytesSent: num(line.bytes_sent),
    bytesReceived: num(line.bytes_recv),
    durationMs: num(line.duration),
  };
}

export interface FlowFilter {
  readonly namespace?: string;
  /** Only the destination side (inbound lines): one line per connection instead of two. */
  readonly destinationOnly?: boolean;
}

export function matchesFilter(f: Flow, filter: FlowFilter): boolean {
  if (filter.destinationOnly === true && f.direction !== 'inbound') return false;
  if (
    filter.namespace !== undefined &&
    f.sourceNamespace !== filter.namespace &&
    f.destinationNamespace !== filter.namespace
  ) {
    return false;
  }
  return true;
}

function who(name: string, ns: string | null): string {
  return ns === null ? name : `${ns}/${name}`;
}

/** `12:00:01.234 demo/client-0 -> demo/echo.demo.svc.cluster.local  mTLS spiffe://… ALLOWED 120B/340B 3ms` */
export function formatFlow(f: Flow): string {
  const time = f.time.length >= 23 ? f.time.slice(11, 23) : f.time;
  const verdict =
    f.verdict === 'allowed'
      ? 'ALLOWED'
      : f.verdict === 'denied'
        ? `DENIED (${f.reason ?? 'policy'})`
        : `FAILED (${f.reason ?? '?'})`;
  const identity = f.security === 'mtls' ? `mTLS ${f.sourceIdentity ?? '(identity at source)'}` : 'plaintext';
  return `${time} [${f.node}] ${who(f.source, f.sourceNamespace)} -> ${who(f.destination, f.destinationNamespace)}  ${identity}  ${verdict}  ${f.bytesSent}B/${f.bytesReceived}B ${Math.round(f.durationMs)}ms`;
}
