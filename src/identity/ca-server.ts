// gRPC front of the CA: istio.v1.auth.IstioCertificateService/CreateCertificate over TLS (docs/architecture.md "Processes and ports" port
// 15012, §5.3). The serving certificate is issued by the CA itself, so clients verify it with the trust
// bundle they already hold. Per request, cheapest first: authenticate the caller from its metadata
// (ca-authz.ts: a stranger costs a map lookup, never a CSR parse), take a signing slot (ca-admission.ts: at
// most 2 × cores at once, a bounded FIFO queue, RESOURCE_EXHAUSTED beyond it), validate CSR + policy (ca.ts),
// authorize the identity for the caller, sign. Every refusal is a gRPC status whose message starts with the FERRY_CA_* code
// and names the identity (and node), plus a warn log line. Hostile bytes on the port never reach this code
// beyond gRPC's own framing, and never stop the server.
import net, { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { ConnectionLimiter, type ConnectionLimits, guardConnection } from '../runtime/connection-limiter.ts';
import type { CertificateAuthority } from './ca.ts';
import { CaAdmission, type CaAdmissionLimits, defaultCaAdmissionLimits } from './ca-admission.ts';
import type { CaAuthorizer, CaAuthzDecision } from './ca-authz.ts';
import { loadCaServiceDefinition, MAX_CA_MESSAGE_BYTES, parseCertificateRequest } from './ca-grpc.ts';
import type { IdentityError, IdentityErrorCode } from './errors.ts';
import { type IdentityLog, SILENT_LOG } from './log.ts';
import { formatSpiffeId } from './spiffe-id.ts';

export interface CaServerOptions {
  readonly ca: CertificateAuthority;
  readonly authorizer: CaAuthorizer;
  /** Listen address; default 127.0.0.1. */
  readonly host?: string;
  /** Listen port; default 0 (any free port; read `port` afterwards). The controller uses 15012. */
  readonly port?: number;
  /** DNS SANs of the serving certificate (e.g. `ferry-controller.ferry-system.svc`); `localhost` always. */
  readonly dnsNames?: readonly string[];
  /** IP SANs of the serving certificate; the listen host is added when it is a specific IP. */
  readonly ipAddresses?: readonly string[];
  readonly log?: IdentityLog;
  /** Concurrent and queued signings (defaults: defaultCaAdmissionLimits()). */
  readonly admission?: Partial<CaAdmissionLimits>;
  /** Concurrent TCP connections per source IP and in total (default 256 / 4096). */
  readonly connectionLimits?: ConnectionLimits;
}

export interface CaServer extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** `host:port`, as a gRPC target. */
  readonly address: string;
  /** Stops accepting, lets in-flight calls finish. */
  close(): Promise<void>;
}

/** Starts the CA's gRPC server; resolves once it listens. */
export async function startCaServer(opts: CaServerOptions): Promise<CaServer> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? SILENT_LOG;
  const ipAddresses = [...(opts.ipAddresses ?? [])];
  if (isIP(host) !== 0 && host !== '0.0.0.0' && host !== '::' && !ipAddresses.includes(host)) ipAddresses.push(host);
  const serving = await opts.ca.issueServingCertificate({
    dnsNames: ['localhost', ...(opts.dnsNames ?? [])],
    ipAddresses,
  });
  const definition = await loadCaServiceDefinition();
  const admission = new CaAdmission({ ...defaultCaAdmissionLimits(), ...opts.admission });

  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_CA_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_CA_MESSAGE_BYTES,
    // One connection cannot hold more calls than this open (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS): a
    // flooding client is bounded per connection, and the CA's memory with it.
    'grpc.max_concurrent_streams': MAX_STREAMS_PER_CONNECTION,
  });
  const refusals = new LogBudget(REFUSAL_LOG_LINES_PER_SECOND);
  server.addService(definition, {
    CreateCertificate: (
      call: grpc.ServerUnaryCall<unknown, unknown>,
      callback: grpc.sendUnaryData<{ cert_chain: readonly string[] }>,
    ) => {
      createCertificate(call, opts, admission, refusals, log).then(
        (result) => (result.ok ? callback(null, { cert_chain: result.chain }) : callback(result.status)),
        (err: unknown) => {
          // Our own invariant broke: a bug. Log with stack; the peer gets a generic INTERNAL.
          log.error({ err, peer: call.getPeer() }, 'CA request failed unexpectedly');
          callback({ code: grpc.status.INTERNAL, details: 'internal CA error' });
        },
      );
    },
  });

  const credentials = grpc.ServerCredentials.createSsl(
    null, // no client certificates: callers authenticate with bearer tokens (they may not have an SVID yet)
    [{ private_key: Buffer.from(serving.privateKeyPem), cert_chain: Buffer.from(serving.certChainPem.join('\n')) }],
    false,
  );
  // The TCP listener is ours: each connection is admitted (per-source and total caps) before gRPC's TLS
  // server sees it, then handed over (a connection injector).
  const injector = server.createConnectionInjector(credentials);
  const limiter = new ConnectionLimiter(opts.connectionLimits ?? CA_CONNECTION_LIMITS);
  const sockets = new Set<net.Socket>();
  const listener = net.createServer((socket) => {
    if (!guardConnection(socket, limiter)) return;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    injector.injectConnection(socket);
  });
  listener.on('error', () => {});
  const bindHost = isIP(host) === 6 ? `[${host}]` : host;
  const port = await new Promise<number>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen({ host, port: opts.port ?? 0 }, () => {
      listener.removeListener('error', reject);
      resolve((listener.address() as net.AddressInfo).port);
    });
  });
  log.info({ host, port, trustDomain: opts.ca.trustDomain, ...admission.limits }, 'CA server listening');

  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      const listenerClosed = new Promise<void>((resolve) => listener.close(() => resolve()));
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      injector.destroy();
      for (const s of sockets) s.destroy(); // connections still in their TLS handshake
      await listenerClosed;
    })();
    return closed;
  };
  return { host, port, address: `${bindHost}:${port}`, close, [Symbol.asyncDispose]: close };
}

// A node asks for one certificate per local identity; more in flight on one connection are queued by the
// client. Small, because each read of a flooding connection dispatches up to this many calls at once.
const MAX_STREAMS_PER_CONNECTION = 32;
const CA_CONNECTION_LIMITS: ConnectionLimits = { maxPerSource: 256, maxTotal: 4096 };
// Refusals before any work (unauthenticated, shed) are logged up to this many lines a second; the next
// line logged says how many were not (`suppressed`), so a flood cannot turn into a logging flood.
const REFUSAL_LOG_LINES_PER_SECOND = 10;

class LogBudget {
  readonly #perSecond: number;
  #windowStart = 0;
  #used = 0;
  #suppressed = 0;

  constructor(perSecond: number) {
    this.#perSecond = perSecond;
  }

  /** null: do not log; else the number of lines suppressed since the last one logged. */
  take(nowMs: number): number | null {
    if (nowMs - this.#windowStart >= 1000) {
      this.#windowStart = nowMs;
      this.#used = 0;
    }
    if (this.#used >= this.#perSecond) {
      this.#suppressed++;
      return null;
    }
    this.#used++;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return suppressed;
  }
}

type Outcome = { ok: true; chain: readonly string[] } | { ok: false; status: Partial<grpc.StatusObject> };

async function createCertificate(
  call: grpc.ServerUnaryCall<unknown, unknown>,
  opts: CaServerOptions,
  admission: CaAdmission,
  refusals: LogBudget,
  log: IdentityLog,
): Promise<Outcome> {
  const peer = call.getPeer();
  const authn = opts.authorizer.authenticate({ metadata: call.metadata, peer });
  if (!authn.ok) {
    // Before the CSR is even looked at: a stranger costs a token lookup (and, within budget, a log line).
    const suppressed = refusals.take(Date.now());
    if (suppressed !== null) {
      log.warn({ code: authn.code, peer, reason: authn.reason, suppressed }, 'CA request refused');
    }
    return {
      ok: false,
      status: { code: grpc.status.UNAUTHENTICATED, details: `${authn.code}: ${authn.reason}` },
    };
  }
  const cancelled = new AbortController();
  const onCancel = (): void => cancelled.abort(new Error('call cancelled'));
  call.once('cancelled', onCancel);
  try {
    const admitted = admission.enter(cancelled.signal, authn.caller);
    if (admitted.kind === 'shed') {
      const why =
        admitted.reason === 'caller'
          ? `this caller already has its share of signings in progress or queued`
          : `${admitted.active} signings in progress and ${admitted.queued} queued`;
      const details = `FERRY_CA_OVERLOADED: ${why}; retry with backoff`;
      const suppressed = refusals.take(Date.now());
      if (suppressed !== null) {
        log.warn(
          { code: 'FERRY_CA_OVERLOADED', peer, caller: authn.caller, ...admission.limits, suppressed },
          'CA request shed',
        );
      }
      return { ok: false, status: { code: grpc.status.RESOURCE_EXHAUSTED, details } };
    }
    let slot: Disposable;
    try {
      slot = await admitted.slot;
    } catch {
      return { ok: false, status: { code: grpc.status.CANCELLED, details: 'cancelled while queued' } };
    }
    using _slot = slot;
    return await signFor(call, opts, authn.caller, log);
  } finally {
    call.removeListener('cancelled', onCancel);
  }
}

async function signFor(
  call: grpc.ServerUnaryCall<unknown, unknown>,
  opts: CaServerOptions,
  caller: string | undefined,
  log: IdentityLog,
): Promise<Outcome> {
  const peer = call.getPeer();
  const req = parseCertificateRequest(call.request);
  const prepared = await opts.ca.prepare({
    csrPem: req.csrPem,
    impersonatedIdentity: req.impersonatedIdentity,
    ttlSeconds: req.validitySeconds,
  });
  if (!prepared.ok) return refuse(prepared.error, { peer, impersonatedIdentity: req.impersonatedIdentity }, log);

  const identity = formatSpiffeId(prepared.value.identity);
  const decision: CaAuthzDecision = await opts.authorizer.authorize({
    requested: prepared.value.identity,
    metadata: call.metadata,
    peer,
    ...(caller === undefined ? {} : { caller }),
  });
  if (!decision.ok) {
    const message = `${decision.code}: may not issue ${identity}${decision.node === undefined ? '' : ` to node ${JSON.stringify(decision.node)}`}: ${decision.reason}`;
    log.warn(
      { code: decision.code, peer, identity, node: decision.node, reason: decision.reason },
      'CA request refused',
    );
    return { ok: false, status: { code: statusFor(decision.code), details: message } };
  }

  const issued = await opts.ca.issue(prepared.value);
  if (!issued.ok) return refuse(issued.error, { peer, identity }, log);
  log.info(
    {
      peer,
      identity,
      node: decision.node,
      serial: issued.value.serialNumber,
      notAfter: issued.value.notAfter.toISOString(),
    },
    'certificate issued',
  );
  return { ok: true, chain: issued.value.certChainPem };
}

function refuse(error: IdentityError, fields: Readonly<Record<string, unknown>>, log: IdentityLog): Outcome {
  const code = statusFor(error.code);
  if (code === grpc.status.INTERNAL) log.error({ ...fields, code: error.code, err: error }, 'CA signing failed');
  else log.warn({ ...fields, code: error.code, reason: error.message }, 'CA request refused');
  return { ok: false, status: { code, details: `${error.code}: ${error.message}` } };
}

function statusFor(code: IdentityErrorCode): grpc.status {
  switch (code) {
    case 'FERRY_CA_UNAUTHENTICATED':
      return grpc.status.UNAUTHENTICATED;
    case 'FERRY_CA_IDENTITY_NOT_ON_NODE':
    case 'FERRY_CA_PERMISSION_DENIED':
      return grpc.status.PERMISSION_DENIED;
    case 'FERRY_CA_SIGNING_FAILED':
      return grpc.status.INTERNAL;
    default:
      // Everything else prepare() returns describes the request itself.
      return grpc.status.INVALID_ARGUMENT;
  }
}
