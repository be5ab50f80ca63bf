// `node bench/slow-clients.ts` (or `npm run bench -- slow-clients`): what BENCH_SLOW_CLIENTS clients from
// one source IP that open TCP to a ztunnel's 15008 and never finish their TLS handshake (half a ClientHello,
// then silence) cost the ztunnel: its open fds and RSS when idle, once every slow client is connected, and
// BENCH_SLOW_HOLD_MS later (after the 10 s handshake timeout). Also whether a legitimate HBONE client is
// served while they are held, how many slow clients the ztunnel still holds, and how many it reset at once.
// The ztunnel is a real `ferry ztunnel` process (static config, in-process CA) with one local workload on
// 127.0.0.50. Needs `ulimit -n` above BENCH_SLOW_CLIENTS + 100 (this process holds every client socket).
// Results: docs/performance.md ("Slow clients on 15008").
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FerryProcess, spawnFerry } from '../src/cli/child-process.ts';
import { rssMb } from './proc.ts';
import { positiveEnv, r3 } from './report.ts';

const WORKLOAD_IP = '127.0.0.50';
const SLOW_SOURCE = '127.0.0.66';
const HALF_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

const CONFIG = `workloads:
- uid: bench//Pod/default/server
  name: server
  namespace: default
  serviceAccount: server
  workloadIps: ["${WORKLOAD_IP}"]
  protocol: HBONE
  node: bench
`;

function fds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

/** Opens `n` slow clients (bounded concurrency of connects); resolves with them once all connected or failed. */
async function openSlowClients(n: number, port: number): Promise<{ sockets: Socket[]; closed: () => number }> {
  const sockets: Socket[] = [];
  let closed = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      const socket = connect({ host: WORKLOAD_IP, port, localAddress: SLOW_SOURCE });
      sockets.push(socket);
      socket.on('error', () => {});
      socket.once('close', () => {
        closed++;
      });
      // Not events.once: it rejects on 'error', and a refused client may see its reset before 'connect'.
      await new Promise<void>((resolve) => {
        socket.once('connect', () => resolve());
        socket.once('close', () => resolve());
      });
      if (!socket.destroyed) socket.write(HALF_CLIENT_HELLO);
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  return { sockets, closed: () => closed };
}

export async function runSlowClients(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const n = positiveEnv(env, 'BENCH_SLOW_CLIENTS', 20_000);
  const holdMs = positiveEnv(env, 'BENCH_SLOW_HOLD_MS', 13_000);
  const port = positiveEnv(env, 'BENCH_SLOW_PORT', 15_008);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-slow-'));
  let zt: FerryProcess | null = null;
  let clients: Socket[] = [];
  try {
    const configPath = join(dir, 'mesh.yaml');
    await writeFile(configPath, CONFIG);
    zt = spawnFerry('ztunnel', [
      'ztunnel',
      ...['--config', configPath, '--node', 'bench', '--in-process-ca', '--hbone-port', String(port)],
      ...['--admin', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--readiness', '127.0.0.1:0'],
    ]);
    await zt.waitFor((l) => l.msg === 'ztunnel ready', 'ztunnel ready');
    const pid = zt.child.pid ?? 0;
    await new Promise((r) => setTimeout(r, 1_000));
    const idle = { fds: fds(pid), rssMb: r3(rssMb(pid)) };
    const started = performance.now();
    const slow = await openSlowClients(n, port);
    clients = slow.sockets;
    const connectMs = Math.round(performance.now() - started);
    await new Promise((r) => setTimeout(r, 1_000));
    const held = { fds: fds(pid), rssMb: r3(rssMb(pid)), clientsStillOpen: n - slow.closed() };
    // A legitimate client meanwhile: a TLS handshake that completes (the HBONE server answers its hello).
    const legit = await legitimateHandshake(port);
    const waitMs = Math.max(0, holdMs - (performance.now() - started));
    await new Promise((r) => setTimeout(r, waitMs));
    const after = { fds: fds(pid), rssMb: r3(rssMb(pid)), clientsStillOpen: n - slow.closed() };
    process.stdout.write(
      `${JSON.stringify({ bench: 'slow-clients', slowClients: n, fromOneIp: SLOW_SOURCE, connectMs, idle, held, legitimateHandshakeMs: legit, afterMs: Math.round(performance.now() - started), after }, null, 2)}\n`,
    );
    return 0;
  } finally {
    for (const c of clients) c.destroy();
    await zt?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** ms until the server's TLS ServerHello arrives for a fresh client from another source, or -1. */
async function legitimateHandshake(port: number): Promise<number> {
  const { connect: tlsConnect } = await import('node:tls');
  const started = performance.now();
  return new Promise((resolve) => {
    const s = tlsConnect({ host: WORKLOAD_IP, port, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    const done = (v: number): void => {
      s.destroy();
      resolve(v);
    };
    // The server asks for a client certificate we do not have: reaching that point means it was served.
    s.once('secureConnect', () => done(Math.round(performance.now() - started)));
    s.once('error', (e: NodeJS.ErrnoException) =>
      done(e.code === 'ECONNRESET' ? -1 : Math.round(performance.now() - started)),
    );
    setTimeout(() => done(-1), 10_000).unref();
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = await runSlowClients();
