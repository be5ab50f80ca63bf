// Caps on concurrent connections of one listener (or of several sharing one limiter: every HBONE listener
// of a ztunnel shares the 15008 one): at most `maxPerSource` from one source IP and `maxTotal` in all, as
// Envoy's per-listener connection limits and overload manager do. ConnectionLimiter is pure counting (no
// sockets, no timers); guardConnection() is the shell every listener calls from its 'connection' event,
// before any TLS or protocol byte is read. Limits and defaults: docs/operations.md ("Connection limits").
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  /** Concurrent connections from one source IP. */
  readonly maxPerSource: number;
  /** Concurrent connections in all. */
  readonly maxTotal: number;
}

export type ConnectionRefusal = 'per-source' | 'total';

/** Held by an admitted connection until it closes; release() is idempotent. */
export interface ConnectionLease {
  release(): void;
}

export type ConnectionAdmission =
  | { readonly ok: true; readonly lease: ConnectionLease }
  | { readonly ok: false; readonly reason: ConnectionRefusal };

export interface ConnectionLimiterStats {
  readonly open: number;
  readonly sources: number;
  readonly refusedPerSource: number;
  readonly refusedTotal: number;
  readonly limits: ConnectionLimits;
}

export class ConnectionLimiter {
  readonly limits: ConnectionLimits;
  readonly #bySource = new Map<string, number>();
  #open = 0;
  #refusedPerSource = 0;
  #refusedTotal = 0;

  constructor(limits: ConnectionLimits) {
    for (const [name, v] of Object.entries(limits)) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be an integer ≥ 1, got ${v}`);
    }
    this.limits = { maxPerSource: limits.maxPerSource, maxTotal: limits.maxTotal };
  }

  /** Admits a new connection from `source` (an IP; '' when unknown), or says which cap refused it. */
  tryAcquire(source: string): ConnectionAdmission {
    if (this.#open >= this.limits.maxTotal) {
      this.#refusedTotal++;
      return { ok: false, reason: 'total' };
    }
    const fromSource = this.#bySource.get(source) ?? 0;
    if (fromSource >= this.limits.maxPerSource) {
      this.#refusedPerSource++;
      return { ok: false, reason: 'per-source' };
    }
    this.#bySource.set(source, fromSource + 1);
    this.#open++;
    let released = false;
    return {
      ok: true,
      lease: {
        release: () => {
          if (released) return;
          released = true;
          this.#open--;
          const left = (this.#bySource.get(source) ?? 1) - 1;
          if (left === 0) this.#bySource.delete(source);
          else this.#bySource.set(source, left);
        },
      },
    };
  }

  /** Open connections from `source`. */
  openFrom(source: string): number {
    return this.#bySource.get(source) ?? 0;
  }

  stats(): ConnectionLimiterStats {
    return {
      open: this.#open,
      sources: this.#bySource.size,
      refusedPerSource: this.#refusedPerSource,
      refusedTotal: this.#refusedTotal,
      limits: this.limits,
    };
  }
}

/** Defaults per listener kind (docs/operations.md, "Connection limits"). */
export const DEFAULT_CONNECTION_LIMITS = {
  /** 15008 of a ztunnel (all its HBONE listeners together) and of a waypoint. */
  hbone: { maxPerSource: 1024, maxTotal: 16384 },
  /** The SOCKS5 entry (loopback: every client has the same source). */
  socks5: { maxPerSource: 1024, maxTotal: 1024 },
  /** Admin, metrics and readiness servers, each. */
  http: { maxPerSource: 64, maxTotal: 256 },
} as const satisfies Record<string, ConnectionLimits>;

/** Time a new connection has to finish its TLS handshake (Envoy's transport_socket_connect_timeout). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * Call first thing in a listener's 'connection' handler. Admitted: the lease is released when the socket
 * closes, and true is returned. Refused: the socket is reset at once (RST: the client learns now, and no
 * TIME_WAIT stays here) and false is returned; the caller must not use it.
 */
export function guardConnection(
  socket: Socket,
  limiter: ConnectionLimiter,
  onRefused?: (reason: ConnectionRefusal, source: string) => void,
): boolean {
  const source = socket.remoteAddress ?? '';
  const admitted = limiter.tryAcquire(source);
  if (!admitted.ok) {
    onRefused?.(admitted.reason, source);
    socket.on('error', () => {}); // the reset may race a write of the peer
    socket.resetAndDestroy();
    return false;
  }
  socket.once('close', () => admitted.lease.release());
  return true;
}
