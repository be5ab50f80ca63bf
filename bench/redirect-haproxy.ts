// The HAProxy side of the redirect benchmark (issue 12) and the single-stream bulk side of all three: an
// mTLS sidecar pair in the same two pods (one thread each; the app dials its own sidecar on 127.0.0.1, the
// classic sidecar shape without iptables), and an iperf3 server in the server pod for bulk transfers.
// Processes run inside the pods (their netns and cgroup) and are stopped through `stack`.
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Pod } from '../testkit/topology.ts';
import { checkConfig, clientSidecarConfig, ensureTools, makeCerts, serverSidecarConfig } from './haproxy.ts';

/** Where the client app dials its sidecar (latency echo, bulk), and the server sidecar's mTLS ports. */
export const SIDECAR = { echo: '127.0.0.1:15101', bulk: '127.0.0.1:15102', mtlsEcho: 15108, mtlsBulk: 15109 } as const;
export const IPERF_PORT = 5201;

export interface HaproxyPair {
  readonly pids: { readonly client: number; readonly server: number };
}

function stopOnDispose(child: ChildProcessWithoutNullStreams, stack: AsyncDisposableStack): void {
  const exited = once(child, 'exit');
  stack.defer(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  });
}

async function spawnReady(pod: Pod, cmd: string, args: readonly string[], stack: AsyncDisposableStack, waitMs: number) {
  const child = pod.spawn(cmd, args);
  child.stdin.end();
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  child.stdout.resume();
  stopOnDispose(child, stack);
  // Neither HAProxy (-db) nor iperf3 -s says "ready" in a way worth parsing: give them a moment, then
  // fail with their stderr if they died.
  await new Promise((r) => setTimeout(r, waitMs));
  if (child.exitCode !== null) throw new Error(`${cmd} in ${pod.name} exited (${child.exitCode}): ${err.slice(-1500)}`);
  return child;
}

/** Starts the mTLS sidecar pair: client pod 127.0.0.1 → server pod IP (mTLS) → 127.0.0.1 app ports. */
export async function startHaproxyPair(
  client: Pod,
  server: Pod,
  echoPort: number,
  dir: string,
  stack: AsyncDisposableStack,
): Promise<HaproxyPair> {
  ensureTools({ haproxy: 'haproxy' });
  const certs = await makeCerts(dir);
  const clientCfg = join(dir, 'haproxy-client.cfg');
  const serverCfg = join(dir, 'haproxy-server.cfg');
  await writeFile(
    clientCfg,
    clientSidecarConfig(certs, [
      { listen: SIDECAR.echo, upstream: `${server.ip}:${SIDECAR.mtlsEcho}` },
      { listen: SIDECAR.bulk, upstream: `${server.ip}:${SIDECAR.mtlsBulk}` },
    ]),
  );
  await writeFile(
    serverCfg,
    serverSidecarConfig(certs, [
      { listen: `${server.ip}:${SIDECAR.mtlsEcho}`, upstream: `127.0.0.1:${echoPort}` },
      { listen: `${server.ip}:${SIDECAR.mtlsBulk}`, upstream: `127.0.0.1:${IPERF_PORT}` },
    ]),
  );
  checkConfig(clientCfg);
  checkConfig(serverCfg);
  // -db: foreground, no master process: the spawned pid is the proxy (the in-pod wrapper execs it).
  const s = await spawnReady(server, 'haproxy', ['-db', '-f', serverCfg], stack, 300);
  const c = await spawnReady(client, 'haproxy', ['-db', '-f', clientCfg], stack, 300);
  return { pids: { client: c.pid ?? 0, server: s.pid ?? 0 } };
}

/** An iperf3 server in the pod on 0.0.0.0:5201 (serves one test after another), or null without iperf3. */
export async function startIperfServer(pod: Pod, stack: AsyncDisposableStack): Promise<boolean> {
  try {
    ensureTools({ iperf3: 'iperf3' });
  } catch (err) {
    process.stderr.write(`bench: no iperf3, bulk side skipped: ${(err as Error).message}\n`);
    return false;
  }
  await spawnReady(pod, 'iperf3', ['-s', '-p', String(IPERF_PORT)], stack, 300);
  return true;
}

/** One single-stream transfer of `bytes` from the client pod; Gbit/s as received by the server. */
export async function runIperf(client: Pod, host: string, port: number, bytes: number): Promise<number> {
  const r = await client.run('iperf3', ['-c', host, '-p', String(port), '-n', String(bytes), '-l', '128K', '-J']);
  let parsed: { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
  try {
    parsed = JSON.parse(r.stdout) as typeof parsed;
  } catch {
    throw new Error(`iperf3 to ${host}:${port} failed (exit ${r.code}): ${r.stderr.slice(-800)}`);
  }
  const bps = parsed.end?.sum_received?.bits_per_second;
  if (r.code !== 0 || bps === undefined) throw new Error(`iperf3 to ${host}:${port}: ${parsed.error ?? r.stderr}`);
  return bps / 1e9;
}
