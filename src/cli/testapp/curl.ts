// `ferry testapp curl` (and `curl` inside `ferry exec`): the built-in HTTP client of the local cluster.
// Prints `HTTP <status>` and the body for each request (or, with --json, one JSON object per request with
// the response headers); connection failures go to stderr as `curl: (7) <code> <message>` and make the exit
// code 7 (curl's "failed to connect"); with --fail, a status >= 400 makes it 22 (as curl -f).
// --count/--interval repeat the request (load loops in tests and the demo); --fail-fast stops at the first
// failure. Load mode (--concurrency or --summary, curl-load.ts) prints one JSON summary instead.
// --h2c speaks HTTP/2 with prior knowledge; --ws sends a WebSocket-style upgrade and echoes --data through it.
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { type LoadPlan, runLoad, withRequestId } from './curl-load.ts';
import { createTransport, type SendRequest, type SendResult, type TransportKind } from './curl-transport.ts';

export const CURL_HELP = `usage: curl <http://host:port/path> [options]
  -H, --header 'k: v'   request header (repeatable)
  -X, --request METHOD  default GET (POST with -d); also --method
  -d, --data TEXT       request body
  -m, --max-time SEC    per-request timeout (default 10)
  -f, --fail            exit 22 on HTTP status >= 400
  --count N             send N requests (default 1)
  --interval MS         pause between requests (per worker in load mode; default 0)
  --fail-fast           stop at the first failed request (not in load mode)
  --json                one JSON object per request: {status, headers, body} or {error: {code, message}}
  --concurrency C       load mode: C workers, each sequential, keep-alive connections
  --summary             load mode with one worker unless --concurrency; prints one JSON summary:
                        {total, byStatus, byPod (x-pod), failures, errors, latencyMs {p50, p90, p99, max}}
  --request-id-prefix P request i carries x-request-id: P-i
  --h2c                 HTTP/2 with prior knowledge over cleartext
  --ws                  WebSocket-style upgrade; writes --data (default "ping") and prints what comes back
  -s, --silent          accepted for curl compatibility (nothing else is printed anyway)
`;

export interface CurlOptions {
  readonly url: URL;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly data: string | undefined;
  readonly timeoutMs: number;
  readonly failOnHttpError: boolean;
  readonly count: number;
  readonly intervalMs: number;
  readonly failFast: boolean;
  readonly json: boolean;
  /** null: print each response; a number: load mode with that many workers. */
  readonly concurrency: number | null;
  readonly requestIdPrefix: string | null;
  readonly protocol: 'http1' | 'h2c' | 'ws';
}

export type CurlResult = SendResult;

/** Parses argv; returns a usage error message instead of throwing. */
export function parseCurlArgs(argv: readonly string[]): CurlOptions | { readonly usage: string } {
  let values: ReturnType<typeof parse>['values'];
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv));
  } catch (err) {
    return { usage: err instanceof Error ? err.message : String(err) };
  }
  const [target, ...extra] = positionals;
  if (target === undefined || extra.length > 0) return { usage: 'expected exactly one URL' };
  let url: URL;
  try {
    url = new URL(/^[a-z]+:\/\//i.test(target) ? target : `http://${target}`);
  } catch {
    return { usage: `bad URL ${JSON.stringify(target)}` };
  }
  if (url.protocol !== 'http:') return { usage: `only http:// URLs are supported, got ${url.protocol}` };
  const headers: Record<string, string> = {};
  for (const h of values.header ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) return { usage: `bad header ${JSON.stringify(h)}: expected 'name: value'` };
    headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  const count = Number(values.count ?? '1');
  const intervalMs = Number(values.interval ?? '0');
  const timeoutMs = Number(values['max-time'] ?? '10') * 1000;
  const concurrency =
    values.concurrency === undefined ? (values.summary === true ? 1 : null) : Number(values.concurrency);
  if (!Number.isInteger(count) || count < 1) return { usage: '--count must be a positive integer' };
  if (!Number.isFinite(intervalMs) || intervalMs < 0) return { usage: '--interval must be >= 0 ms' };
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) return { usage: '--max-time must be > 0 s' };
  if (concurrency !== null && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1000)) {
    return { usage: '--concurrency must be an integer 1..1000' };
  }
  if (values.h2c === true && values.ws === true) return { usage: '--h2c and --ws exclude each other' };
  const method = values.request ?? values.method ?? (values.data === undefined ? 'GET' : 'POST');
  return {
    url,
    method: method.toUpperCase(),
    headers,
    data: values.data,
    timeoutMs,
    failOnHttpError: values.fail === true,
    count,
    intervalMs,
    failFast: values['fail-fast'] === true,
    json: values.json === true,
    concurrency,
    requestIdPrefix: values['request-id-prefix'] ?? null,
    protocol: values.h2c === true ? 'h2c' : values.ws === true ? 'ws' : 'http1',
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      header: { type: 'string', short: 'H', multiple: true },
      request: { type: 'string', short: 'X' },
      method: { type: 'string' },
      data: { type: 'string', short: 'd' },
      'max-time': { type: 'string', short: 'm' },
      fail: { type: 'boolean', short: 'f' },
      count: { type: 'string' },
      interval: { type: 'string' },
      'fail-fast': { type: 'boolean' },
      json: { type: 'boolean' },
      concurrency: { type: 'string' },
      summary: { type: 'boolean' },
      'request-id-prefix': { type: 'string' },
      h2c: { type: 'boolean' },
      ws: { type: 'boolean' },
      silent: { type: 'boolean', short: 's' },
    },
  });
}

function sendRequest(opts: CurlOptions): SendRequest {
  return { url: opts.url, method: opts.method, headers: opts.headers, data: opts.data, timeoutMs: opts.timeoutMs };
}

/** One request; never throws (failures are results). */
export async function curlOnce(opts: CurlOptions): Promise<CurlResult> {
  const transport = createTransport(opts.protocol, opts.url, 1);
  try {
    return await transport.send(sendRequest(opts));
  } finally {
    transport.close();
  }
}

/** Runs the requests, printing as it goes (or one summary in load mode); returns the exit code. */
export async function runCurl(
  opts: CurlOptions,
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<number> {
  if (opts.concurrency !== null) {
    const kind: TransportKind = opts.protocol === 'http1' ? 'http1-keepalive' : opts.protocol;
    const plan: LoadPlan = {
      request: sendRequest(opts),
      count: opts.count,
      concurrency: opts.concurrency,
      intervalMs: opts.intervalMs,
      requestIdPrefix: opts.requestIdPrefix,
    };
    const summary = await runLoad(plan, createTransport(kind, opts.url, opts.concurrency));
    out(`${JSON.stringify(summary)}\n`);
    if (summary.failures > 0) return 7;
    const httpErrors = Object.keys(summary.byStatus).some((s) => Number(s) >= 400);
    return opts.failOnHttpError && httpErrors ? 22 : 0;
  }
  const transport = createTransport(opts.protocol, opts.url, 1);
  let exit = 0;
  try {
    for (let i = 0; i < opts.count; i++) {
      if (i > 0 && opts.intervalMs > 0) await delay(opts.intervalMs);
      const r = await transport.send(withRequestId(sendRequest(opts), opts.requestIdPrefix, i));
      if (r.kind === 'error') {
        if (opts.json) out(`${JSON.stringify({ error: { code: r.code, message: r.message } })}\n`);
        err(`curl: (7) ${r.code} ${r.message}\n`);
        exit = 7;
      } else {
        if (opts.json) out(`${JSON.stringify({ status: r.status, headers: r.headers, body: r.body })}\n`);
        else out(`HTTP ${r.status}\n${r.body}${r.body.endsWith('\n') || r.body === '' ? '' : '\n'}`);
        if (opts.failOnHttpError && r.status >= 400 && exit === 0) exit = 22;
      }
      if (exit !== 0 && opts.failFast) break;
    }
  } finally {
    transport.close();
  }
  return exit;
}
