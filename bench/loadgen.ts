// Fixed-rate request/response load generator (the shape of Istio's fortio runs): N connections, a total
// rate of R requests/s spread round-robin, each request S bytes answered by S bytes of echo. Latency is
// measured per request from write to the last response byte. Optionally dials through a SOCKS5 entry.
// Also a single-stream throughput mode. Prints one JSON object on stdout.
import type net from 'node:net';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { dialViaSocks5 } from '../src/cli/socks5-dial.ts';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    socks5: { type: 'string' },
    source: { type: 'string' },
    connections: { type: 'string', default: '8' },
    rate: { type: 'string', default: '1000' },
    'duration-ms': { type: 'string', default: '10000' },
    size: { type: 'string', default: '1024' },
    'throughput-bytes': { type: 'string' },
  },
});

function hostPort(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i), port: Number(text.slice(i + 1)) };
}

const target = hostPort(values.target ?? '');

async function dial(): Promise<net.Socket> {
  if (values.socks5 !== undefined) {
    return dialViaSocks5({ proxy: hostPort(values.socks5), target, localAddress: values.source });
  }
  return new Promise((resolve, reject) => {
    const s = connect({ ...target, localAddress: values.source }, () => resolve(s));
    s.setNoDelay(true);
    s.once('error', reject);
  });
}

interface Conn {
  socket: net.Socket;
  pending: number; // bytes still expected for the in-flight request
  sentAt: bigint;
  queue: number; // requests waiting for this connection
}

async function runLatency(): Promise<void> {
  const connections = Number(values.connections);
  const rate = Number(values.rate);
  const durationMs = Number(values['duration-ms']);
  const size = Number(values.size);
  const payload = Buffer.alloc(size, 0x61);
  const latenciesUs: number[] = [];
  let errors = 0;
  const conns: Conn[] = [];
  for (let i = 0; i < connections; i++) {
    const socket = await dial();
    const c: Conn = { socket, pending: 0, sentAt: 0n, queue: 0 };
    socket.on('data', (chunk: Buffer) => {
      c.pending -= chunk.length;
      if (c.pending <= 0) {
        latenciesUs.push(Number(process.hrtime.bigint() - c.sentAt) / 1000);
        c.pending = 0;
        if (c.queue > 0) {
          c.queue--;
          send(c);
        }
      }
    });
    socket.on('error', () => {
      errors++;
    });
    socket.resume(); // a SOCKS5-dialed socket comes back explicitly paused
    conns.push(c);
  }
  function send(c: Conn): void {
    c.pending = size;
    c.sentAt = process.hrtime.bigint();
    c.socket.write(payload);
  }
  const total = Math.floor((rate * durationMs) / 1000);
  const start = performance.now();
  let issued = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
      for (; issued < due; issued++) {
        const c = conns[issued % connections] as Conn;
        if (c.pending > 0) c.queue++;
        else send(c);
      }
      if (issued >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  // Let in-flight requests finish (bounded).
  const deadline = performance.now() + 5000;
  while (latenciesUs.length + errors < total && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  for (const c of conns) c.socket.destroy();
  latenciesUs.sort((a, b) => a - b);
  const pct = (p: number): number =>
    (latenciesUs[Math.min(latenciesUs.length - 1, Math.floor((p / 100) * latenciesUs.length))] ?? Number.NaN) / 1000;
  process.stdout.write(
    `${JSON.stringify({ requests: total, completed: latenciesUs.length, errors, p50_ms: pct(50), p90_ms: pct(90), p99_ms: pct(99), max_ms: pct(100) })}\n`,
  );
}

async function runThroughput(bytes: number): Promise<void> {
  const socket = await dial();
  const chunk = Buffer.alloc(256 * 1024, 0x62);
  const start = process.hrtime.bigint();
  const done = new Promise<string>((resolve, reject) => {
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    socket.on('end', () => resolve(answer.trim()));
    socket.on('error', reject);
    socket.resume(); // a SOCKS5-dialed socket comes back explicitly paused
  });
  let sent = 0;
  while (sent < bytes) {
    const n = Math.min(chunk.length, bytes - sent);
    sent += n;
    if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
      await new Promise((r) => socket.once('drain', r));
    }
  }
  socket.end();
  const answer = await done;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (Number(answer) !== bytes) throw new Error(`sink received ${answer} of ${bytes} bytes`);
  process.stdout.write(`${JSON.stringify({ bytes, seconds, gbps: (bytes * 8) / seconds / 1e9 })}\n`);
  socket.destroy();
}

if (values['throughput-bytes'] !== undefined) await runThroughput(Number(values['throughput-bytes']));
else await runLatency();
