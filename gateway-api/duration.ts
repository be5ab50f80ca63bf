// GEP-2257 durations (`1h30m`, `500ms`, `0s`), the format of HTTPRoute timeouts and retry backoff. Pure.

const DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const PART = /([0-9]{1,5})(ms|h|m|s)/g;
const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };

export type DurationResult =
  | { readonly ok: true; readonly ms: number }
  | { readonly ok: false; readonly error: string };

/** Parses a Gateway API duration; `0s` gives 0 (callers treat 0 as "disabled"). */
export function parseGatewayDuration(text: unknown): DurationResult {
  if (typeof text !== 'string' || !DURATION.test(text)) {
    return { ok: false, error: `${JSON.stringify(text)} is not a duration like 10s, 1m30s or 500ms` };
  }
  let ms = 0;
  for (const m of text.matchAll(PART)) ms += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? 0);
  return { ok: true, ms };
}
