// Shared by test/e2e/waypoint-*.test.ts: a local cluster from examples/waypoint (plus the e2e extras),
// requests from inside a pod with the built-in curl (one request as JSON, or a load run summarised as one
// JSON object), `ferry apply` of a variant, the waypoint's log and metrics, and polling for a config change
// to show in traffic (config reaches the waypoint asynchronously after `ferry apply` returns).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { FerryCli } from './cluster-cli.ts';

export const EXAMPLE = fileURLToPath(new URL('../../examples/waypoint', import.meta.url));
export const EXTRAS = join(EXAMPLE, 'e2e-extras');
export const variant = (name: string): string => join(EXAMPLE, 'variants', name);

export interface EchoBody {
  readonly pod: string;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly url: string;
  readonly headers: Record<string, string | string[]>;
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: string;
  /** The echo app's JSON when the body is one. */
  readonly echo: EchoBody | null;
}

export interface LoadSummary {
  readonly total: number;
  readonly byStatus: Record<string, number>;
  readonly byPod: Record<string, number>;
  readonly failures: number;
  readonly errors: Record<string, number>;
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
}

export interface WaypointInfo {
  readonly namespace: string;
  readonly name: string;
  readonly ip: string;
  readonly pid: number;
  readonly metrics: string;
}

/** A running waypoint cluster and the ways tests talk to it. */
export class WaypointCluster {
  readonly cli: FerryCli;
  readonly name: string;
  readonly vips: ReadonlyMap<string, string>;

  constructor(cli: FerryCli, name: string, vips: ReadonlyMap<string, string>) {
    this.cli = cli;
    this.name = name;
    this.vips = vips;
  }

  /**
   * `ferry up -f examples/waypoint -f …extras` on a uniquely named cluster; `ferry down` and the leftover
   * check are registered before it starts, so they run even when `up` fails.
   */
  static async up(cli: FerryCli, t: TestContext, short: string, extras: readonly string[] = [EXTRAS]) {
    const name = `ferrytest-${process.pid}-${short}`;
    t.after(async () => {
      const down = await cli.run(['down', '--cluster', name]);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual(cli.leftovers(name), []);
    });
    const files = [EXAMPLE, ...extras].flatMap((f) => ['-f', f]);
    const up = await cli.run(['up', ...files, '--nodes', '2', '--cluster', name]);
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
    const status = await cli.status(name);
    const vips = new Map<string, string>();
    for (const s of status.services) if (s.namespace === 'shop' && typeof s.vip === 'string') vips.set(s.name, s.vip);
    return new WaypointCluster(cli, name, vips);
  }

  /** `http://<VIP of shop/service><path>`. */
  url(service: string, path = '/'): string {
    const vip = this.vips.get(service);
    assert.ok(vip !== undefined, `shop/${service} has a VIP`);
    return `http://${vip}${path}`;
  }

  curl(args: readonly string[], pod = 'client-0') {
    return this.cli.run(['exec', '--cluster', this.name, `shop/${pod}`, '--', 'curl', '-s', ...args]);
  }

  /** One request (`curl --json`): status, response headers, body (and the echo's JSON). */
  async request(url: string, args: readonly string[] = [], pod = 'client-0'): Promise<Reply> {
    const r = await this.curl([url, '--json', ...args], pod);
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    assert.ok(line !== undefined, `curl ${url}: no output\n${r.stderr}`);
    const parsed = JSON.parse(line) as { status?: number; headers?: Reply['headers']; body?: string; error?: unknown };
    assert.ok(parsed.status !== undefined, `curl ${url}: ${JSON.stringify(parsed.error)}`);
    return { status: parsed.status, headers: parsed.headers ?? {}, body: parsed.body ?? '', echo: echoOf(parsed.body) };
  }

  /** A load run from a pod (`curl --summary`), e.g. `['--count', '500', '--concurrency', '4']`. */
  async load(url: string, args: readonly string[], pod = 'client-0'): Promise<LoadSummary> {
    const r = await this.curl([url, '--summary', ...args], pod);
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    assert.ok(line !== undefined, `load ${url}: no summary\n${r.stderr}`);
    return JSON.parse(line) as LoadSummary;
  }

  async apply(file: string): Promise<void> {
    const r = await this.cli.run(['apply', '--cluster', this.name, '-f', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  }

  async waypoint(): Promise<WaypointInfo> {
    const text = await readFile(join(this.cli.stateRoot, this.name, 'waypoints.json'), 'utf8');
    const wp = (JSON.parse(text) as WaypointInfo[]).find((w) => w.namespace === 'shop' && w.name === 'waypoint');
    assert.ok(wp !== undefined, 'shop/waypoint in waypoints.json');
    return wp;
  }

  /** The waypoint's JSON access-log lines (`msg: request`). */
  async accessLog(): Promise<Record<string, unknown>[]> {
    return jsonLines(await this.log('waypoint-shop-waypoint.log')).filter((l) => l.msg === 'request');
  }

  /** A log file of the cluster (logs/<file>). */
  log(file: string): Promise<string> {
    return readFile(join(this.cli.stateRoot, this.name, 'logs', file), 'utf8').catch(() => '');
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://${(await this.waypoint()).metrics}/metrics`)).text();
  }

  async statusText(): Promise<string> {
    const r = await this.cli.run(['status', '--cluster', this.name]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  }
}

export function jsonLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line being written
    }
  }
  return out;
}

function echoOf(body: string | undefined): EchoBody | null {
  if (body === undefined || !body.startsWith('{')) return null;
  try {
    const parsed = JSON.parse(body) as Partial<EchoBody>;
    return typeof parsed.pod === 'string' ? (parsed as EchoBody) : null;
  } catch {
    return null;
  }
}

/**
 * Asks `probe` until it returns a value (not undefined), with a short backoff; gives up with the last
 * observation after `limitMs`. Returns the value and how long it took from `since`.
 */
export async function until<T>(
  probe: () => Promise<T | undefined>,
  opts: { readonly limitMs: number; readonly since?: number; readonly what: string },
): Promise<{ value: T; elapsedMs: number }> {
  const since = opts.since ?? Date.now();
  for (let waitMs = 10; ; waitMs = Math.min(waitMs * 2, 100)) {
    const value = await probe();
    if (value !== undefined) return { value, elapsedMs: Date.now() - since };
    if (Date.now() - since > opts.limitMs) assert.fail(`${opts.what}: not seen within ${opts.limitMs} ms`);
    await delay(waitMs);
  }
}

/** Header value as one string (first of a list). */
export function header(h: Record<string, string | string[]>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}
