// `ferry testapp curl` (and `curl` inside `ferry exec`): the built-in HTTP client of the local cluster.
// Prints `HTTP <status>` and the body for each request; connection failures go to stderr as
// `curl: (7) <code> <message>` and make the exit code 7 (curl's "failed to connect"); with --fail, a status
// >= 400 makes it 22 (as curl -f). --count/--interval repeat the request (load loops in tests and the demo);
// --fail-fast stops at the first failure.
import { request } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';

export const CURL_HELP = `usage: curl <http://host:port/path> [options]
  -H, --header 'k: v'   request header (repeatable)
  -X, --request METHOD  default GET (POST with -d)
  -d, --data TEXT       request body
  -m, --max-time SEC    per-request timeout (default 10)
  -f, --fail            exit 22 on HTTP status >= 400
  --count N             send N requests (default 1)
  --interval MS         pause between requests (default 0)
  --fail-fast           stop at the first failed request
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
}

export type CurlResult =
  | { readonly kind: 'response'; readonly status: number; readonly body: string }
  | { readonly kind: 'error'; readonly code: string; readonly message: string };

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
  if (!Number.isInteger(count) || count < 1) return { usage: '--count must be a positive integer' };
  if (!Number.isFinite(intervalMs) || intervalMs < 0) return { usage: '--interval must be >= 0 ms' };
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) return { usage: '--max-time must be > 0 s' };
  return {
    url,
    method: (values.request ?? (values.data === undefined ? 'GET' : 'POST')).toUpperCase(),
    headers,
    data: values.data,
    timeoutMs,
    failOnHttpError: values.fail === true,
    count,
    intervalMs,
    failFast: values['fail-fast'] === true,
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      header: { type: 'string', short: 'H', multiple: true },
      request: { type: 'string', short: 'X' },
      data: { type: 'string', short: 'd' },
      'max-time': { type: 'string', short: 'm' },
      fail: { type: 'boolean', short: 'f' },
      count: { type: 'string' },
      interval: { type: 'string' },
      'fail-fast': { type: 'boolean' },
      silent: { type: 'boolean', short: 's' },
    },
  });
}

/** One request; never throws (failures are results). */
export function curlOnce(opts: CurlOptions): Promise<CurlResult> {
  return new Promise((resolve) => {
    const req = request(
      opts.url,
      { method: opts.method, headers: opts.headers, signal: AbortSignal.timeout(opts.timeoutMs), agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ kind: 'response', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', (err) => resolve(failure(err)));
      },
    );
    req.on('error', (err) => resolve(failure(err)));
    req.end(opts.data);
  });
}

function failure(err: Error): CurlResult {
  const code = 'code' in err && typeof err.code === 'string' ? err.code : err.name;
  return { kind: 'error', code, message: err.message };
}

/** Runs the requests, printing as it goes; returns the exit code. */
export async function runCurl(
  opts: CurlOptions,
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<number> {
  let exit = 0;
  for (let i = 0; i < opts.count; i++) {
    if (i > 0 && opts.intervalMs > 0) await delay(opts.intervalMs);
    const r = await curlOnce(opts);
    if (r.kind === 'error') {
      err(`curl: (7) ${r.code} ${r.message}\n`);
      exit = 7;
    } else {
      out(`HTTP ${r.status}\n${r.body}${r.body.endsWith('\n') || r.body === '' ? '' : '\n'}`);
      if (opts.failOnHttpError && r.status >= 400 && exit === 0) exit = 22;
    }
    if (exit !== 0 && opts.failFast) break;
  }
  return exit;
}
