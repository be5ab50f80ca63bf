// Gateway API retries and timeouts around upstream attempts (reference gateway-api-anchor.md §1.6, §1.7):
// `attempts` counts retries after the first try; a retry happens on a status in `codes`, on a connection
// error or reset before the response head, and on a per-try timeout (`backendRequest`, first byte sent →
// response head); `backoff` is the minimum pause between tries; `request` caps the whole exchange (504).
// When retries run out the last backend response is returned as it is. The decision is pure
// (`retryDecision`); `sendWithRetries` carries it out.
import type { RetryPolicy } from '../../../gateway-api/types.ts';
import type { UpstreamClient } from './client.ts';
import type { SendOptions, SendResult, UpstreamEndpoint, UpstreamRequest, UpstreamResponse } from './types.ts';

export type AttemptOutcome =
  | { readonly kind: 'response'; readonly status: number }
  | { readonly kind: 'connect-failure' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'per-try-timeout' };

export interface RetryInput {
  readonly outcome: AttemptOutcome;
  readonly retry: RetryPolicy | null;
  /** Retries already made. */
  readonly retriesMade: number;
  /** The body can be sent again (buffered). */
  readonly replayable: boolean;
  /** ms left before the request deadline (Infinity without one). */
  readonly remainingMs: number;
}

export type RetryDecision = { readonly retry: true; readonly waitMs: number } | { readonly retry: false };

export function retryDecision(i: RetryInput): RetryDecision {
  const { retry } = i;
  if (retry === null || !i.replayable || i.retriesMade >= retry.attempts) return { retry: false };
  const retriable = i.outcome.kind === 'response' ? retry.codes.includes(i.outcome.status) : true;
  if (!retriable) return { retry: false };
  // Exponential from the minimum, capped at 10×; never shorter than the configured backoff.
  const waitMs = retry.backoffMs === 0 ? 0 : Math.min(retry.backoffMs * 2 ** i.retriesMade, retry.backoffMs * 10);
  if (waitMs >= i.remainingMs) return { retry: false };
  return { retry: true, waitMs };
}

class PerTryTimeout extends Error {}

export async function sendWithRetries(
  client: UpstreamClient,
  req: UpstreamRequest,
  opts: SendOptions,
): Promise<SendResult> {
  const started = Date.now();
  const deadline = opts.timeouts.requestMs === null ? Number.POSITIVE_INFINITY : started + opts.timeouts.requestMs;
  const replayable = req.body === null || Buffer.isBuffer(req.body);
  // One controller for the whole exchange: aborted by the request deadline or by the client going away.
  const exchange = new AbortController();
  let timedOut = false;
  const deadlineTimer =
    opts.timeouts.requestMs === null
      ? null
      : setTimeout(
          () => {
            timedOut = true;
            exchange.abort();
          },
          Math.max(1, opts.timeouts.requestMs),
        );
  const onClientGone = () => exchange.abort();
  opts.signal.addEventListener('abort', onClientGone, { once: true });
  try {
    return await attemptLoop(client, req, opts, exchange, () => timedOut, deadline, replayable);
  } finally {
    if (deadlineTimer !== null) clearTimeout(deadlineTimer);
    opts.signal.removeEventListener('abort', onClientGone);
  }
}

async function attemptLoop(
  client: UpstreamClient,
  req: UpstreamRequest,
  opts: SendOptions,
  exchange: AbortController,
  timedOut: () => boolean,
  deadline: number,
  replayable: boolean,
): Promise<SendResult> {
  let retries = 0;
  let lastEndpoint: UpstreamEndpoint | null = null;
  for (;;) {
    const endpoint = opts.pickEndpoint();
    if (endpoint === null) {
      return {
        kind: 'failure',
        status: 503,
        flag: 'UH',
        retries,
        endpoint: lastEndpoint,
        message: 'no healthy endpoint',
      };
    }
    lastEndpoint = endpoint;
    const attempt = new AbortController();
    const abortAttempt = () => attempt.abort();
    exchange.signal.addEventListener('abort', abortAttempt, { once: true });
    const perTry = opts.timeouts.backendRequestMs;
    let perTryTimer: NodeJS.Timeout | null = null;
    let outcome: AttemptOutcome;
    let response: UpstreamResponse | null = null;
    let failure = '';
    try {
      const pending = client.send(endpoint, req, opts.protocol, attempt.signal);
      response = await (perTry === null
        ? pending
        : Promise.race([
            pending,
            new Promise<never>((_, reject) => {
              perTryTimer = setTimeout(() => reject(new PerTryTimeout()), perTry);
            }),
          ]));
      outcome = { kind: 'response', status: response.status };
    } catch (err) {
      if (perTryTimer !== null) clearTimeout(perTryTimer);
      attempt.abort();
      exchange.signal.removeEventListener('abort', abortAttempt);
      if (timedOut()) {
        return { kind: 'failure', status: 504, flag: 'UT', retries, endpoint, message: 'request timeout' };
      }
      if (opts.signal.aborted) {
        return { kind: 'failure', status: 503, flag: 'UC', retries, endpoint, message: 'client went away' };
      }
      if (err instanceof PerTryTimeout) outcome = { kind: 'per-try-timeout' };
      else if ((err as { code?: string }).code === 'FERRY_UPSTREAM_CONNECT_FAILED')
        outcome = { kind: 'connect-failure' };
      else outcome = { kind: 'reset' };
      failure = (err as Error).message;
    }
    if (perTryTimer !== null) clearTimeout(perTryTimer);
    exchange.signal.removeEventListener('abort', abortAttempt);
    const decision = retryDecision({
      outcome,
      retry: opts.retry,
      retriesMade: retries,
      replayable,
      remainingMs: deadline - Date.now(),
    });
    if (!decision.retry) {
      if (response !== null) return { kind: 'response', response, retries };
      return failureOf(outcome, retries, endpoint, failure);
    }
    if (response !== null) response.body.destroy(); // the failed try's body is not needed
    retries += 1;
    if (decision.waitMs > 0) await new Promise((r) => setTimeout(r, decision.waitMs));
    if (timedOut()) {
      return { kind: 'failure', status: 504, flag: 'UT', retries, endpoint, message: 'request timeout' };
    }
  }
}

function failureOf(outcome: AttemptOutcome, retries: number, endpoint: UpstreamEndpoint, message: string): SendResult {
  switch (outcome.kind) {
    case 'per-try-timeout':
      return {
        kind: 'failure',
        status: 504,
        flag: retries > 0 ? 'URX' : 'UT',
        retries,
        endpoint,
        message: 'upstream per-try timeout',
      };
    case 'connect-failure':
      return { kind: 'failure', status: 503, flag: retries > 0 ? 'URX' : 'UF', retries, endpoint, message };
    case 'reset':
      return { kind: 'failure', status: 503, flag: retries > 0 ? 'URX' : 'UC', retries, endpoint, message };
    case 'response':
      throw new Error('unreachable: a response is returned as is');
  }
}
