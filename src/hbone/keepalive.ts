// HTTP/2 PING keepalive for HBONE sessions, client and server (docs/architecture.md "Failure semantics", "HBONE (wire contract)"):
// a PING every intervalMs; a PING unanswered for timeoutMs drops the session. Timers are unref'd (they
// never keep the process alive) and cleared when the session closes.
import type { Http2Session } from 'node:http2';

export interface KeepaliveOptions {
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

export const DEFAULT_KEEPALIVE: KeepaliveOptions = { intervalMs: 10_000, timeoutMs: 20_000 };

interface KeepaliveState {
  readonly session: Http2Session;
  readonly timeoutMs: number;
  /** When the unanswered PING was sent; null when none is outstanding. */
  outstandingSinceMs: number | null;
  readonly onAck: (err: Error | null) => void;
  timer: NodeJS.Timeout | null;
}

/** Starts keepalive on a connected session; stops by itself when the session closes. */
export function startKeepalive(session: Http2Session, opts: KeepaliveOptions): void {
  const state: KeepaliveState = {
    session,
    timeoutMs: opts.timeoutMs,
    outstandingSinceMs: null,
    onAck: (err) => {
      if (err === null) state.outstandingSinceMs = null;
    },
    timer: null,
  };
  state.timer = setInterval(onKeepaliveTick, opts.intervalMs, state);
  state.timer.unref();
  session.once('close', () => {
    if (state.timer !== null) clearInterval(state.timer);
    state.timer = null;
  });
}

function onKeepaliveTick(state: KeepaliveState): void {
  const { session } = state;
  if (session.destroyed || session.closed) return;
  const now = Date.now();
  if (state.outstandingSinceMs !== null) {
    if (now - state.outstandingSinceMs >= state.timeoutMs) session.destroy(new Error('HTTP/2 PING timeout'));
    return;
  }
  state.outstandingSinceMs = now;
  // ping() returns false when too many PINGs are unacknowledged; the timeout above then catches it.
  session.ping(state.onAck);
}
