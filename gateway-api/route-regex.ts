// Regular expressions of HTTPRoute path and header matches (docs/operations.md, routing semantics): full
// matches, RE2-compatible (no backreferences or lookaround). They run on request data at the waypoint, so
// a match must take linear time, as RE2 guarantees Envoy: with V8's backtracking engine alone,
// `/(a|b|ab)*` against `/abab…ab!` takes exponential time and one request stalls the waypoint for every
// client (found by `npm run fuzz -- --target httproute`).
import { setFlagsFromString } from 'node:v8';

// V8 moves a regex to its linear-time engine once it backtracked too often (50,000 times by default).
// That engine runs regexes without the u flag and without backreferences or lookaround, i.e. every regex
// accepted here except those using Unicode-only syntax. Process-wide; it changes how long a pathological
// match takes, never its result. Set when this module loads, before any route regex exists.
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');

// RE2 (what Envoy runs) has no backreferences or lookaround; refusing them keeps routes portable.
const NON_RE2 = /\\[1-9]|\\k<|\(\?[=!]|\(\?<[=!]/;
// Syntax that means something else without the u flag: these keep u (and the backtracking engine).
const UNICODE_ONLY = /\\[pP]\{|\\u\{/;

export type RouteRegexResult =
  | { readonly ok: true; readonly regex: RegExp }
  | { readonly ok: false; readonly reason: string };

/** Compiles a match value into an anchored regex; the reason names the problem when it is refused. */
export function compileRouteRegex(value: string): RouteRegexResult {
  if (NON_RE2.test(value)) return { ok: false, reason: 'uses backreferences or lookaround (not RE2)' };
  const source = `^(?:${value})$`;
  let strict: RegExp;
  try {
    // The u flag parses strictly (no stray escapes or lone brackets), closer to RE2's syntax.
    strict = new RegExp(source, 'u');
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  // Without u the same pattern matches the same strings (request paths and header values are Latin-1:
  // no surrogate pairs), and can fall back to the linear-time engine.
  return { ok: true, regex: UNICODE_ONLY.test(value) ? strict : new RegExp(source) };
}
