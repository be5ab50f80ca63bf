// Fixed-rate HTTP/1.1 load (the shape of Istio's fortio runs): C keep-alive connections, R requests/s in
// total, each a POST of S bytes that the echo answers with them (plus its JSON envelope). Latency is
// measured per request from send to the last response byte. Prints one JSON object on stdout.
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    connections: { type: 'string', default: '8' },
    rate: { type: 'string', default: '1000' },
    'duration-ms': { type: 'string', default: '10000' },
    size: { type: 'string', default: '1024' },
    // Load sent at the same rate before measuring, so JIT tier-up and heap growth are not in the numbers.
    'warmup-ms': { type: 'string', default: '0' },
    // Also print when the slowest 1% were sent (ms since the start), to tell pauses from scattered delays.
    timeline: { type: 'boolean', default: false },
  },
});

const url = new URL(values.url ?? '');
const connections = Number(values.connections);
const rate = Number(values.rate);
const durationMs = Number(values['duration-ms']);
const body = Buffer.alloc(Number(values.size), 'x');
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });

function once(): Promise<number | null> {
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-length': body.length }, timeout: 10_000 },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve(res.statusCode === 200 ? Number(process.hrtime.bigint() - started) / 1e6 : null));
        res.on('error', () => resolve(null));
      },
    );
    req.on('error', () => resolve(null));
    req.on('timeout', () => req.destroy());
    req.end(body);
  });
}

const latencies: number[] = [];
const slow: [number, number][] = [];
let errors = 0;
let sent = 0;
const pending = new Set<Promise<void>>();
const start = performance.now();
const intervalMs = 1000 / rate;
// Warm the connections first so that their setup is not in the numbers.
await Promise.all(Array.from({ length: connections }, () => once()));
const warmupMs = Number(values['warmup-ms']);
let warmupCompleted = 0;
if (warmupMs > 0) await sendAtRate(warmupMs, (_, ms) => void (ms !== null && warmupCompleted++));
const begin = performance.now();
sent = await sendAtRate(durationMs, (sentAt, ms) => {
  if (ms === null) errors++;
  else {
    latencies.push(ms);
    if (values.timeline) slow.push([Math.round(sentAt), Math.round(ms * 10) / 10]);
  }
});

/** Sends at `rate` for `forMs`, then waits for every answer; `record` gets each result. Returns how many were sent. */
async function sendAtRate(forMs: number, record: (sentAtMs: number, ms: number | null) => void): Promise<number> {
  const from = performance.now();
  let n = 0;
  while (performance.now() - from < forMs) {
    const due = from + n * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    n++;
    const sentAt = performance.now() - from;
    const p = once().then((ms) => {
      record(sentAt, ms);
      pending.delete(p);
    });
    pending.add(p);
  }
  await Promise.all(pending);
  return n;
}
agent.destroy();
latencies.sort((a, b) => a - b);
const pct = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
process.stdout.write(
  `${JSON.stringify({
    requests: sent,
    completed: latencies.length,
    errors,
    achieved_rps: Math.round((latencies.length / (performance.now() - begin)) * 1000),
    p50_ms: pct(0.5),
    p90_ms: pct(0.9),
    p99_ms: pct(0.99),
    wall_ms: Math.round(performance.now() - start),
    // For CPU per request: the warm-up load was served by the same processes.
    warmup_completed: warmupCompleted,
    ...(values.timeline
      ? {
          begin_epoch_ms: Math.round(performance.timeOrigin + begin),
          slowest: slow
            .sort((a, b) => b[1] - a[1])
            .slice(0, Math.ceil(latencies.length / 100))
            .sort((a, b) => a[0] - b[0]),
        }
      : {}),
  })}\n`,
);
