// Plain TCP dials to an upstream (the local app, or a passthrough destination), bounded by a timeout and
// cancellable. Resolves with a connected socket; rejects with FERRY_UPSTREAM_CONNECT_FAILED naming the target.
import net from 'node:net';
import { ProxyError } from './errors.ts';
import { formatAuthority } from './hbone/authority.ts';
import type { IpPort } from './store/ip-addr.ts';

export interface DialOptions {
  readonly localAddress?: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

export function dialTcp(target: IpPort, opts: DialOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const where = formatAuthority(target.ip, target.port);
    const socket = net.connect({
      host: target.ip,
      port: target.port,
      localAddress: opts.localAddress,
      allowHalfOpen: true,
      noDelay: true,
    });
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
