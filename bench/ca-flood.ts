// `node bench/ca-flood.ts` (or `npm run bench -- ca-flood`): how a flood against the CA (`ferry ca`, its
// own process) changes the latency of a legitimate node's CreateCertificate. Three phases, each
// BENCH_CA_SAMPLES sequential legitimate requests (new key + CSR + call, as a ztunnel does) from node-a:
//   quiet            nothing else;
//   unauthenticated  a flood child sends BENCH_CA_FLOOD_RPS requests a second (open loop: the rate does not
//                    depend on how fast the CA answers) without a token, valid CSRs, at most BENCH_CA_FLOOD
//                    unanswered at a time;
//   authenticated    the same with node-b's token (these are signed or shed, RESOURCE_EXHAUSTED).
// A phase ends after BENCH_CA_PHASE_MS (60 s) even if fewer samples were taken (`done` says how many).
// Prints p50/p99/max of the legitimate requests, how many failed, the flood's answered rate by status, and
// the CA's RSS before and after. The flood runs in a child process so that it does not share the event
// loop of the measured client. Results: docs/performance.md ("CA under a flood").
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { type FerryProcess, spawnFerry } from '../src/cli/child-process.ts';
import { CaClient } from '../src/identity/ca-client.ts';
import { encodeCertificateRequest, loadCaServiceDefinition } from '../src/identity/ca-grpc.ts';
import { createCsr } from '../src/identity/csr.ts';
import { spiffeId } from '../src/identity/spiffe-id.ts';
import { rssMb } from './proc.ts';
import { positiveEnv, r3 } from './report.ts';

const TD = 'cluster.local';
const LEGIT_TOKEN = 'bench-token-node-a';
const FLOOD_TOKEN = 'bench-token-node-b';

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function legitimateRound(client: CaClient, samples: number, phaseMs = Number.POSITIVE_INFINITY) {
  const ms: number[] = [];
  let failed = 0;
  const errors = new Set<string>();
  const phaseStart = performance.now();
  for (let i = 0; i < samples && performance.now() - phaseStart < phaseMs; i++) {
    const started = performance.now();
    try {
      await client.fetch(spiffeId(TD, 'default', `web-${i % 4}`));
      ms.push(performance.now() - started);
    } catch (err) {
      failed++;
      errors.add((err as Error).message.slice(0, 120));
    }
  }
  ms.sort((a, b) => a - b);
  return {
    done: ms.length + failed,
    p50: r3(percentile(ms, 50)),
    p99: r3(percentile(ms, 99)),
    max: r3(ms.at(-1) ?? Number.NaN),
    failed,
    errors: [...errors],
  };
}

interface FloodChild {
  /** Resolves once the child sends (it loads gRPC and makes its CSR first: seconds on a busy machine). */
  readonly ready: Promise<void>;
  stop(): Promise<Record<string, number>>;
}

function startFlood(address: string, rootPath: string, inFlight: number, rps: number, token: string): FloodChild {
  const args = [fileURLToPath(import.meta.url), 'flood', address, rootPath, String(inFlight), String(rps), token];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const { promise: ready, resolve: onReady } = Promise.withResolvers<void>();
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    out += c;
    if (out.startsWith('ready\n')) onReady();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    ready,
    async stop() {
      child.stdin.end('stop\n');
      await exited;
      return JSON.parse(out.slice('ready\n'.length).trim() || '{}') as Record<string, number>;
    },
  };
}

/** Child mode: `rps` CreateCertificate calls a second (at most `inFlight` unanswered) until stdin says stop. */
async function floodChild(
  address: string,
  rootPath: string,
  inFlight: number,
  rps: number,
  token: string,
): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const def = await loadCaServiceDefinition();
  const method = def.CreateCertificate as grpc.MethodDefinition<Record<string, unknown>, unknown>;
  const creds = grpc.credentials.createSsl(await readFile(rootPath));
  const clients = Array.from({ length: 8 }, (_, i) => new grpc.Client(address, creds, { 'grpc.bench_channel': i }));
  const req = encodeCertificateRequest({
    csrPem: (await createCsr(spiffeId(TD, 'default', 'flood'))).csrPem,
    validitySeconds: 0,
    impersonatedIdentity: undefined,
  });
  const md = new grpc.Metadata();
  if (token !== '-') md.set('authorization', `Bearer ${token}`);
  const counts: Record<string, number> = {};
  let stop = false;
  let sent = 0;
  let pending = 0;
  const started = performance.now();
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  let skipped = 0;
  const fire = (): void => {
    if (pending >= inFlight) {
      skipped++;
      return;
    }
    const client = clients[sent++ % clients.length] as grpc.Client;
    pending++;
    client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, req, md, (err) => {
      pending--;
      const name = err === null ? 'OK' : (grpc.status[err.code] ?? String(err.code));
      counts[name] = (counts[name] ?? 0) + 1;
      if (stop && pending === 0) done();
    });
  };
  // Open loop: whatever the timer's lateness, the number sent (or skipped) follows the clock.
  const ticker = setInterval(() => {
    const due = Math.floor(((performance.now() - started) * rps) / 1000) - sent - skipped;
    for (let i = 0; i < due; i++) fire();
  }, 10);
  process.stdout.write('ready\n');
  process.stdin.once('data', () => {
    stop = true;
    clearInterval(ticker);
    if (pending === 0) done();
  });
  await finished;
  const seconds = (performance.now() - started) / 1000;
  for (const c of clients) c.close();
  process.stdout.write(
    `${JSON.stringify({ ...counts, sent, notSentInFlightCap: skipped, answeredPerSecond: Math.round(Object.values(counts).reduce((a, b) => a + b, 0) / seconds) })}\n`,
  );
}

export async function runCaFlood(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const samples = positiveEnv(env, 'BENCH_CA_SAMPLES', 50);
  const flood = positiveEnv(env, 'BENCH_CA_FLOOD', 2000);
  const rps = positiveEnv(env, 'BENCH_CA_FLOOD_RPS', 500);
  // A phase ends after this long even if not every sample was taken (failures wait for the 10 s deadline).
  const phaseMs = positiveEnv(env, 'BENCH_CA_PHASE_MS', 60_000);
  const warmupMs = positiveEnv(env, 'BENCH_CA_WARMUP_MS', 1000);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-ca-'));
  const rootPath = join(dir, 'root.pem');
  let ca: FerryProcess | null = null;
  try {
    ca = spawnFerry('ca', [
      'ca',
      ...['--listen', '127.0.0.1:0', '--root-out', rootPath],
      ...['--node-token', `${LEGIT_TOKEN}=node-a`, '--node-token', `${FLOOD_TOKEN}=node-b`],
    ]);
    const ready = await ca.waitFor((l) => l.msg === 'CA ready', 'CA ready');
    const address = String(ready.address);
    const pid = ca.child.pid ?? 0;
    const client = await CaClient.create({ address, roots: { file: rootPath }, timeoutMs: 10_000, token: LEGIT_TOKEN });
    await legitimateRound(client, 5); // warm-up: TLS session, JIT
    const rss: Record<string, number> = { idle: r3(rssMb(pid)) };
    const results: Record<string, unknown> = {};
    results.quiet = await legitimateRound(client, samples);
    for (const [phase, token] of [
      ['unauthenticated', '-'],
      ['authenticated', FLOOD_TOKEN],
    ] as const) {
      const child = startFlood(address, rootPath, flood, rps, token);
      await child.ready;
      await new Promise((r) => setTimeout(r, warmupMs));
      const legit = await legitimateRound(client, samples, phaseMs);
      rss[`during ${phase}`] = r3(rssMb(pid));
      const floodCounts = await child.stop();
      results[phase] = { ...legit, flood: floodCounts };
      await new Promise((r) => setTimeout(r, 500));
      rss[`after ${phase}`] = r3(rssMb(pid));
    }
    client.close();
    process.stdout.write(
      `${JSON.stringify({ bench: 'ca-flood', samples, floodRps: rps, floodMaxInFlight: flood, legitimateMs: results, caRssMb: rss }, null, 2)}\n`,
    );
    return 0;
  } finally {
    await ca?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (mode === 'flood') {
    const [address, rootPath, inFlight, rps, token] = rest;
    await floodChild(address as string, rootPath as string, Number(inFlight), Number(rps), token as string);
  } else {
    process.exitCode = await runCaFlood();
  }
}
