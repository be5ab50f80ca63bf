// Plain TCP dials to an upstream (the local app, or a passthrough destination), bounded by a timeout and
// cancellable. Resolves with a connected socket; rejects with FERRY_UPSTREAM_CONNECT_FAILED naming the target.
// The socket comes from a SocketFactory: the host's by default, a pod's netns for enrolled pods.
// isEndpointFailure tells which failed connects count toward an endpoint's ejection (outlier detection).
import type net from 'node:net';
import { ProxyError } from '../errors.ts';
import type { IpPort } from '../mesh/ip-addr.ts';
import { formatAuthority } from './authority.ts';
import { HboneStatusError } from './client.ts';
import type { SocketFactory } from './socket-factory.ts';
import { hostSocketFactory } from './socket-factory.ts';

export interface DialOptions {
  readonly localAddress?: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Where the socket is created (default: the host netns). */
  readonly sockets?: SocketFactory;
}

export function dialTcp(target: IpPort, opts: DialOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const where = formatAuthority(target.ip, target.port);
    let socket: net.Socket;
    try {
      socket = (opts.sockets ?? hostSocketFactory).connect(
        target,
        opts.localAddress === undefined ? {} : { localAddress: opts.localAddress },
      );
    } catch (cause) {
      reject(
        new ProxyError('FERRY_UPSTREAM_CONNECT_FAILED', `connect to ${where} failed: ${describe(cause)}`, { cause }),
      );
      return;
    }
    const fail = (cause: unknown): void => {
      cleanup();
      socket.destroy();
      reject(
        new ProxyError('FERRY_UPSTREAM_CONNECT_FAILED', `connect to ${where} failed: ${describe(cause)}`, { cause }),
      );
    };
    const onTimeout = (): void => fail(new Error(`timed out after ${opts.timeoutMs} ms`));
    const onAbort = (): void => fail(opts.signal?.reason ?? new Error('aborted'));
    const timer = setTimeout(onTimeout, opts.timeoutMs);
    timer.unref();
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('error', fail);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    if (opts.signal?.aborted) return fail(opts.signal.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', fail);
    socket.once('connect', () => {
      cleanup();
      resolve(socket);
    });
  });
}

function describe(cause: unknown): string {
  const e = cause as { code?: string; message?: string };
  return e.code ?? e.message ?? String(cause);
}

/**
 * Whether a failed connect says the endpoint is unreachable (it counts toward its ejection): refused, timed
 * out or failed TLS to its HBONE port or its plain port, or a gateway failure (502/503/504) to CONNECT. A
 * policy denial (401), a bad request or our own state (no certificate, draining) says nothing about it.
 */
export function isEndpointFailure(error: ProxyError): boolean {
  switch (error.code) {
    case 'FERRY_HBONE_HANDSHAKE_FAILED':
    case 'FERRY_UPSTREAM_CONNECT_FAILED':
      return true;
    case 'FERRY_HBONE_UPSTREAM_STATUS':
      return error instanceof HboneStatusError && [502, 503, 504].includes(error.status);
    default:
      return false;
  }
}
