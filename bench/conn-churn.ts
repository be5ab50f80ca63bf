// New-connection load generator: opens a fresh connection at a fixed rate (optionally through a SOCKS5
// entry, i.e. a new HBONE CONNECT stream and a new authorization decision at the destination ztunnel per
// connection), sends `size` bytes, waits for their echo and closes. Measures the connect time (dial until
// the proxy reported success, or the TCP handshake for a direct dial) and the time to the full echo, per
// connection. Prints one JSON object on stdout. Used by bench/policy-scale.ts and bench/ztunnel-soak.ts.
import type net from 'node:net';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { dialViaSocks5 } from '../src/cli/socks5-dial.ts';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    socks5: { type: 'string' },
    source: { type: 'string' },
    rate: { type: 'string', default: '50' },
    'duration-ms': { type: 'string', default: '10000' },
    size: { type: 'string', default: '1024' },
    /** Connections allowed in flight at once; further ones due are counted as skipped. */
    'max-in-flight': { type: 'string', default: '64' },
  },
});

function hostPort(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i), port: Number(text.slice(i + 1)) };
}

const target = hostPort(values.target ?? '');
const size = Number(values.size);
const payload = Buffer.alloc(size, 0x63);

function dial(): Promise<net.Socket> {
  if (values.socks5 !== undefined) {
    return dialViaSocks5({ proxy: hostPort(values.socks5), target, localAddress: values.source });
  }
  return new Promise((resolve, reject) => {
    const s = connect({ ...target, localAddress: values.source }, () => resolve(s));
    s.setNoDelay(true);
    s.once('error', reject);
  });
}

const connectMs: number[] = [];
const totalMs: number[] = [];
let errors = 0;
let skipped = 0;
let inFlight = 0;

async function once(): Promise<void> {
  const start = performance.now();
  let socket: net.Socket | null = null;
  try {
    socket = await dial();
    const connected = performance.now();
    await new Promise<void>((resolve, reject) => {
      let pending = size;
      const s = socket as net.Socket;
      s.on('data', (chunk: Buffer) => {
        pending -= chunk.length;
        if (pending <= 0) resolve();
      });
      s.once('error', reject);
      s.once('close', () => (pending > 0 ? reject(new Error('closed before the echo')) : resolve()));
      s.resume(); // a SOCKS5-dialed socket comes back paused
      s.write(payload);
    });
    connectMs.push(connected - start);
    totalMs.push(performance.now() - start);
  } catch {
    errors++;
  } finally {
    socket?.destroy();
  }
}

const rate = Number(values.rate);
const durationMs = Number(values['duration-ms']);
const maxInFlight = Number(values['max-in-flight']);
const total = Math.floor((rate * durationMs) / 1000);
const running = new Set<Promise<void>>();
const begin = performance.now();
let issued = 0;
while (issued < total) {
  const due = Math.min(total, Math.floor(((performance.now() - begin) * rate) / 1000));
  for (; issued < due; issued++) {
    if (inFlight >= maxInFlight) {
      skipped++;
      continue;
    }
    inFlight++;
    const p = once().finally(() => {
      inFlight--;
      running.delete(p);
    });
    running.add(p);
  }
  await new Promise((r) => setTimeout(r, 1));
}
await Promise.all(running);

const pct = (xs: number[], p: number): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};
const r3 = (n: number) => Math.round(n * 1000) / 1000;
process.stdout.write(
  `${JSON.stringify({
    connections: total,
    completed: totalMs.length,
    errors,
    skipped,
    connect_p50_ms: r3(pct(connectMs, 50)),
    connect_p90_ms: r3(pct(connectMs, 90)),
    connect_p99_ms: r3(pct(connectMs, 99)),
    total_p50_ms: r3(pct(totalMs, 50)),
    total_p99_ms: r3(pct(totalMs, 99)),
  })}\n`,
);
