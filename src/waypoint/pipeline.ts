// One HTTP request through the waypoint (docs/architecture.md "How a connection flows through the code" step 6; reference gateway-api-anchor.md §2.4, §7):
// L7 authorization, the route of the destination Service port (none attached → pass-through to the
// Service; attached but no match → 404), CORS, rule filters, redirect, weighted backend choice (none or
// invalid → 500), per-backend filters, mirrors, then the upstream exchange with the rule's retries and
// timeouts, response filters, one metrics record and one access-log line.
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Duplex, Readable } from 'node:stream';
import { corsPreflight, corsResponseHeaders } from '../../gateway-api/cors.ts';
import {
  applyHeaderModifier,
  type HeaderMap,
  mirrorSampled,
  redirectLocation,
  rewritePath,
} from '../../gateway-api/filters.ts';
import { selectRoute } from '../../gateway-api/match.ts';
import type {
  CompiledRule,
  HttpFilter,
  RequestView,
  RouteBackend,
  RouteMatch,
  ServiceBackend,
} from '../../gateway-api/types.ts';
import { BackendSplitter } from '../../gateway-api/weights.ts';
import { formatSpiffeId } from '../identity/spiffe-id.ts';
import { workloadIdentity } from '../mesh/mesh-view.ts';
import type { Service, Workload } from '../mesh/types.ts';
import type { Logger } from '../runtime/logger.ts';
import { evaluateL7, policiesFor } from './authz/evaluate.ts';
import { pickServiceEndpoint } from './endpoints.ts';
import { isGrpcContentType, relayTrailersOnly, replyGrpcStatus } from './grpc-status.ts';
import {
  type DownstreamRequest,
  type DownstreamResponse,
  headerValue,
  pipeBody,
  readBody,
  toResponseHeaders,
} from './http-io.ts';
import type { WaypointMetrics } from './metrics.ts';
import { type DownstreamContext, serviceName, type WaypointState } from './state.ts';
import { ensureTraceparent } from './trace.ts';
import { serveUpgrade } from './upgrade.ts';
import type { UpstreamClient } from './upstream/client.ts';
import { fromIncomingHeaders } from './upstream/headers.ts';
import { sendWithRetries } from './upstream/retry.ts';
import type { SendResult, UpstreamEndpoint, UpstreamRequest } from './upstream/types.ts';

export type { DownstreamRequest, DownstreamResponse };

export interface PipelineDeps {
  readonly state: () => WaypointState;
  readonly client: UpstreamClient;
  readonly metrics: WaypointMetrics;
  readonly log: Logger;
  readonly hbonePort: number;
  /** One access-log line per request (off by default, as Istio's waypoint; docs/operations.md). */
  readonly accessLog?: boolean;
  readonly random?: () => number;
}

const MAX_MIRRORS_IN_FLIGHT = 64;

interface Outcome {
  status: number;
  flags: string;
  route: string | null;
  rule: string | null;
  retries: number;
  upstream: UpstreamEndpoint | null;
  policy: string | null;
  /** Why L7 authorization denied (no ALLOW matched, or a DENY matched); null when allowed. */
  denial: string | null;
  requestBytes: number;
  responseBytes: number;
  /** grpc-status of a gRPC response (from the trailers, or the headers of a trailers-only response). */
  grpcStatus: string | null;
  /** A gRPC call on a port where a GRPCRoute applies: local outcomes are answered as gRPC statuses. */
  grpc: boolean;
}

export class RequestPipeline {
  readonly #deps: PipelineDeps;
  readonly #random: () => number;
  readonly #splitter: BackendSplitter;
  #mirrors = 0;

  constructor(deps: PipelineDeps) {
    this.#deps = deps;
    this.#random = deps.random ?? Math.random;
    this.#splitter = new BackendSplitter(this.#random);
  }

  async handle(req: DownstreamRequest, res: DownstreamResponse, ctx: DownstreamContext): Promise<void> {
    const started = performance.now();
    const state = this.#deps.state();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const headers = fromIncomingHeaders(req.headers as IncomingHttpHeaders);
    const authority = headerValue(req.headers, ':authority') ?? headerValue(req.headers, 'host') ?? '';
    if (!headers.has('x-request-id')) headers.set('x-request-id', [randomUuid()]);
    const trace = ensureTraceparent(headers);
    const view: RequestView = {
      method: req.method ?? 'GET',
      path: q < 0 ? url : url.slice(0, q),
      query: q < 0 ? '' : url.slice(q + 1),
      headers,
    };
    const out: Outcome = {
      status: 0,
      flags: '-',
      route: null,
      rule: null,
      retries: 0,
      upstream: null,
      policy: null,
      denial: null,
      requestBytes: 0,
      grpcStatus: null,
      responseBytes: 0,
      grpc: false,
    };
    const svc = ctx.target.service;
    const svcRef = { namespace: svc.namespace, name: serviceName(svc) };
    try {
      const verdict = evaluateL7(policiesFor(state.policies, state.identity, svcRef), {
        sourcePrincipal: formatSpiffeId(ctx.sourceIdentity),
        sourceIp: ctx.sourceIp,
        method: view.method,
        path: view.path,
        host: authority,
        port: ctx.target.port.servicePort,
        headers,
      });
      if (!verdict.allowed) {
        out.policy = verdict.policy;
        out.denial = verdict.reason;
        out.flags = 'RBAC';
        return this.#local(res, out, 403, 'RBAC: access denied');
      }
      // The client's namespace picks its consumer routes, if it has any (gateway-api/route-table.ts).
      const table = state.routes.forServicePort(
        svcRef.namespace,
        svcRef.name,
        ctx.target.port.servicePort,
        ctx.sourceIdentity.namespace,
      );
      if (table === null) {
        // No route attached: the Service itself, as if there were no waypoint.
        const passthrough = { namespace: svcRef.namespace, name: svcRef.name, port: ctx.target.port.servicePort };
        return await this.#forward(req, res, ctx.protocol, state, view, authority, headers, out, {
          backend: passthrough,
          rule: null,
          match: null,
          filters: [],
        });
      }
      out.grpc =
        table.kind === 'GRPCRoute' && ctx.protocol === 'http2' && isGrpcContentType(headers.get('content-type')?.[0]);
      const selected = selectRoute(table, view);
      if (selected === null) {
        out.flags = 'NR';
        return this.#local(res, out, 404, 'no route matched');
      }
      const { rule, match } = selected;
      out.route = rule.route;
      out.rule = rule.name ?? String(rule.ruleIndex);
      const cors = rule.filters.find((f) => f.type === 'CORS');
      if (cors !== undefined) {
        const pre = corsPreflight(cors.cors, view);
        if (pre !== null) {
          if (pre.status === 403) return this.#local(res, out, 403, 'CORS origin not allowed');
          return this.#local(res, out, pre.status, '', pre.headers);
        }
      }
      const redirect = rule.filters.find((f) => f.type === 'RequestRedirect');
      if (redirect !== undefined) {
        const location = redirectLocation(
          redirect.redirect,
          {
            scheme: 'http',
            host: authority,
            listenerPort: ctx.target.port.servicePort,
            path: view.path,
            query: view.query,
          },
          match,
        );
        return this.#local(res, out, redirect.redirect.statusCode, '', new Map([['location', location]]));
      }
      const chosen = this.#splitter.pick(rule.backends);
      if (chosen === null) return this.#local(res, out, 500, 'no backend for this route');
      if (chosen.service === null) {
        return this.#local(res, out, 500, `backend not available (${chosen.problem ?? 'invalid'})`);
      }
      return await this.#forward(req, res, ctx.protocol, state, view, authority, headers, out, {
        backend: chosen.service,
        rule,
        match,
        filters: [...rule.filters, ...chosen.filters],
        chosen,
      });
    } catch (err) {
      this.#deps.log.error({ error: String(err) }, 'waypoint request failed');
      if (!res.headersSent) this.#local(res, out, 500, 'internal error');
      else res.destroy();
    } finally {
      // Logged once the last byte is handed to the tunnel (Envoy's duration), or when the client went away.
      afterResponse(res, () => this.#finish(res, out, started, ctx, view, authority, headers, trace.traceId));
    }
  }

  async #forward(
    req: DownstreamRequest,
    res: DownstreamResponse,
    downstream: 'http1' | 'http2',
    state: WaypointState,
    view: RequestView,
    authority: string,
    headersIn: Map<string, string[]>,
    out: Outcome,
    plan: {
      backend: ServiceBackend;
      rule: CompiledRule | null;
      match: RouteMatch | null;
      filters: readonly HttpFilter[];
      chosen?: RouteBackend;
    },
  ): Promise<void> {
    let headers: HeaderMap = headersIn;
    let path = view.path;
    let host = authority;
    const responseMods = [];
    const mirrors = [];
    for (const f of plan.filters) {
      if (f.type === 'RequestHeaderModifier') headers = applyHeaderModifier(headers, f.modifier);
      else if (f.type === 'ResponseHeaderModifier') responseMods.push(f.modifier);
      else if (f.type === 'URLRewrite') {
        if (f.rewrite.hostname !== null) host = f.rewrite.hostname;
        if (f.rewrite.path !== null && plan.match !== null) path = rewritePath(path, f.rewrite.path, plan.match);
      } else if (f.type === 'RequestMirror' && f.mirror.backend !== null && mirrorSampled(f.mirror, this.#random())) {
        mirrors.push(f.mirror.backend);
      }
    }
    const service = state.backendService(plan.backend);
    if (service === null)
      return this.#local(res, out, 500, `backend ${plan.backend.namespace}/${plan.backend.name} not found`);
    // gRPC streams in both directions at once (bidi calls wait for replies before sending more), so its
    // body is passed through as it arrives, never buffered (no retries: GRPCRoute has none); a mirrored
    // call is buffered, to be sent twice.
    const grpcStream =
      downstream === 'http2' && mirrors.length === 0 && isGrpcContentType(headersIn.get('content-type')?.[0]);
    const body = grpcStream ? (req as Readable) : await readBody(req);
    out.requestBytes = Buffer.isBuffer(body) ? body.length : 0;
    const upstreamReq: UpstreamRequest = {
      method: view.method,
      path: `${path}${view.query === '' ? '' : `?${view.query}`}`,
      authority: host,
      headers,
      body: Buffer.isBuffer(body) && body.length === 0 ? null : body,
    };
    const grpcCall = (headersIn.get('content-type')?.[0] ?? '').startsWith('application/grpc');
    for (const m of mirrors) this.#mirror(state, m, upstreamReq, grpcCall);
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const result: SendResult = await sendWithRetries(this.#deps.client, upstreamReq, {
      protocol: upstreamProtocol(
        service,
        plan.backend.port,
        (headersIn.get('content-type')?.[0] ?? '').startsWith('application/grpc'),
      ),
      timeouts: plan.rule?.timeouts ?? { requestMs: null, backendRequestMs: null },
      retry: plan.rule?.retry ?? null,
      pickEndpoint: () => this.#pickEndpoint(state, service, plan.backend.port),
      signal: abort.signal,
    });
    out.retries = result.retries;
    if (result.kind === 'failure') {
      out.upstream = result.endpoint;
      out.flags = result.flag;
      return this.#local(
        res,
        out,
        result.status,
        result.status === 504
          ? 'upstream request timeout'
          : 'upstream connect error or disconnect/reset before headers',
      );
    }
    const response = result.response;
    out.upstream = response.endpoint;
    let respHeaders: HeaderMap = response.headers;
    for (const m of responseMods) respHeaders = applyHeaderModifier(respHeaders, m);
    const cors = plan.filters.find((f) => f.type === 'CORS');
    const extra = cors === undefined ? new Map<string, string>() : corsResponseHeaders(cors.cors, view);
    out.status = response.status;
    if (downstream === 'http2' && respHeaders.has('grpc-status')) {
      out.grpcStatus = respHeaders.get('grpc-status')?.[0] ?? null;
      response.body.resume();
      relayTrailersOnly(res as Http2ServerResponse, response.status, toResponseHeaders(respHeaders, extra));
      return;
    }
    (res as ServerResponse).writeHead(response.status, toResponseHeaders(respHeaders, extra));
    const relayedTrailers = await pipeBody(
      response.body,
      res,
      (n) => {
        out.responseBytes += n;
      },
      // HTTP/2 clients get the backend's trailers (gRPC status); HTTP/1.1 responses here are not chunked-with-trailers.
      downstream === 'http2' ? response.trailers : undefined,
    );
    out.grpcStatus = relayedTrailers?.get('grpc-status')?.[0] ?? response.headers.get('grpc-status')?.[0] ?? null;
  }

  /** HTTP/1.1 Upgrade requests (WebSocket): see upgrade.ts. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, ctx: DownstreamContext): Promise<void> {
    return serveUpgrade({ ...this.#deps, random: this.#random, splitter: this.#splitter }, req, socket, head, ctx);
  }

  #pickEndpoint(state: WaypointState, service: Service, port: number): UpstreamEndpoint | null {
    return pickServiceEndpoint(state, service, port, this.#random, this.#deps.hbonePort, this.#deps.client.outliers);
  }

  #mirror(state: WaypointState, backend: ServiceBackend, req: UpstreamRequest, grpc: boolean): void {
    if (this.#mirrors >= MAX_MIRRORS_IN_FLIGHT || (req.body !== null && !Buffer.isBuffer(req.body))) return;
    const service = state.backendService(backend);
    if (service === null) return;
    const endpoint = this.#pickEndpoint(state, service, backend.port);
    if (endpoint === null) return;
    this.#mirrors += 1;
    const copy: UpstreamRequest = { ...req, authority: `${req.authority.replace(/:\d+$/, '')}-shadow` };
    this.#deps.client
      .send(endpoint, copy, upstreamProtocol(service, backend.port, grpc), AbortSignal.timeout(30_000))
      .then((r) => r.body.resume())
      .catch((err: unknown) => this.#deps.log.debug({ error: String(err) }, 'mirror request failed'))
      .finally(() => {
        this.#mirrors -= 1;
      });
  }

  #local(
    res: DownstreamResponse,
    out: Outcome,
    status: number,
    text: string,
    headers?: ReadonlyMap<string, string>,
  ): void {
    out.status = status;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (out.grpc && status >= 400) {
      out.grpcStatus = String(replyGrpcStatus(res as Http2ServerResponse, status, text));
      return;
    }
    const h: OutgoingHttpHeaders = { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) };
    for (const [k, v] of headers ?? []) h[k] = v;
    (res as ServerResponse).writeHead(status, h);
    res.end(text);
    out.responseBytes = Buffer.byteLength(text);
  }

  #finish(
    res: DownstreamResponse,
    out: Outcome,
    started: number,
    ctx: DownstreamContext,
    view: RequestView,
    authority: string,
    headers: HeaderMap,
    traceId: string,
  ): void {
    const durationMs = performance.now() - started;
    const state = this.#deps.state();
    const source = state.view.workloadByAddress('', ctx.sourceIp) ?? null;
    const destination: Workload | null = out.upstream?.workload ?? null;
    this.#deps.metrics.record({
      source,
      sourceIdentity: ctx.sourceIdentity,
      service: ctx.target.service,
      destination,
      destinationIdentity: destination === null ? null : workloadIdentity(destination),
      protocol: (headers.get('content-type')?.[0] ?? '').startsWith('application/grpc') ? 'grpc' : 'http',
      responseCode: out.status,
      grpcStatus: out.grpcStatus,
      responseFlags: out.flags,
      durationMs,
      requestBytes: out.requestBytes,
      responseBytes: out.responseBytes,
    });
    if (this.#deps.accessLog !== true) return;
    const id = ctx.sourceIdentity;
    this.#deps.log.info(
      {
        method: view.method,
        path: view.path,
        authority,
        protocol: ctx.protocol === 'http2' ? 'HTTP/2' : 'HTTP/1.1',
        response_code: out.status,
        response_flags: out.flags,
        duration_ms: Math.round(durationMs * 1000) / 1000,
        bytes_received: out.requestBytes,
        bytes_sent: out.responseBytes,
        route: out.route,
        rule: out.rule,
        retries: out.retries,
        upstream_host: out.upstream === null ? null : `${out.upstream.ip}:${out.upstream.port}`,
        upstream_pod: destination === null ? null : `${destination.namespace}/${destination.name}`,
        source_principal: formatSpiffeId(id),
        source_ip: ctx.sourceIp,
        destination_service: ctx.target.service.hostname,
        policy: out.policy,
        denial: out.denial,
        request_id: headers.get('x-request-id')?.[0] ?? null,
        trace_id: traceId,
        closed_early: !res.writableFinished,
      },
      'request',
    );
  }
}

/** Runs `done` once: at once if the response is already finished or destroyed, else on finish or close. */
function afterResponse(res: DownstreamResponse, done: () => void): void {
  if (res.writableFinished || res.destroyed) {
    done();
    return;
  }
  let called = false;
  const once = () => {
    if (called) return;
    called = true;
    res.off('finish', once);
    res.off('close', once);
    done();
  };
  res.on('finish', once);
  res.on('close', once);
}

function randomUuid(): string {
  return randomUUID();
}

/**
 * The backend port's appProtocol decides (http → HTTP/1.1; http2, grpc → HTTP/2). Without one, gRPC
 * (which only exists over HTTP/2) goes as HTTP/2 and everything else as HTTP/1.1, which every HTTP server
 * speaks.
 */
function upstreamProtocol(service: Service, port: number, grpc: boolean): 'http1' | 'http2' {
  const app = service.ports.find((p) => p.servicePort === port)?.appProtocol ?? null;
  if (app === 'http2' || app === 'grpc') return 'http2';
  if (app === 'http') return 'http1';
  return grpc ? 'http2' : 'http1';
}
