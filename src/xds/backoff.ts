// When the xDS client tries the controller again after a stream ended (issue 9: a ztunnel took ~12 s to
// come back after a 30 s controller outage, with the delay growing to 15 s × jitter). Exponential growth
// from `initialMs`, capped at `maxMs` (5 s by default), with full jitter (the delay is uniform in
// [0, ceiling]): many ztunnels losing the same controller spread their retries over the whole window
// instead of arriving together, and none waits longer than the cap after the controller is back. The
// attempt count resets once a stream works (the client's concern). Pure: the caller passes the random draw.

export interface ReconnectBackoff {
  /** Ceiling of the first retry's delay; doubles per failed attempt. */
  readonly initialMs: number;
  /** The ceiling never grows past this: the longest a client waits once the controller is back. */
  readonly maxMs: number;
}

export const DEFAULT_XDS_BACKOFF: ReconnectBackoff = { initialMs: 100, maxMs: 5_000 };

/** The largest delay of the given attempt (0 = the first retry after a working stream ended). */
export function reconnectCeilingMs(attempt: number, backoff: ReconnectBackoff): number {
  const max = Math.max(0, backoff.maxMs);
  const initial = Math.min(Math.max(0, backoff.initialMs), max);
  // 2 ** attempt overflows to Infinity for large attempts; Math.min keeps it at the cap.
  return Math.min(max, initial * 2 ** Math.max(0, Math.floor(attempt)));
}

/** The delay before the given attempt: full jitter, `random` in [0, 1) (Math.random() in production). */
export function reconnectDelayMs(attempt: number, backoff: ReconnectBackoff, random: number): number {
  const r = Math.min(Math.max(random, 0), 1);
  return Math.round(r * reconnectCeilingMs(attempt, backoff));
}
