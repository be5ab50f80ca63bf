// The HAProxy sides of the waypoint benchmark (issue 12), in the plain namespace of the same local cluster:
// an L7 proxy (mode http, one thread) in pod plain/hap doing the same weighted split over plain/echo-a and
// plain/echo-b as the waypoint's HTTPRoute, once plain (client → hap → echo) and once with mTLS on both legs
// (client → its sidecar on 127.0.0.1 → mTLS → hap → mTLS → the echo pod's sidecar → echo), the shape of
// Ferry's ztunnel → waypoint → ztunnel path. Each HAProxy runs in its pod through `ferry exec`; its pid is
// found by its config path. Also wrk runs for the maximum rate.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  checkConfig,
  clientSidecarConfig,
  ensureTools,
  haproxyPids,
  l7Config,
  makeCerts,
  serverSidecarConfig,
} from './haproxy.ts';

export const HAP_PORTS = { plain: 8000, mtls: 8443, sidecar: 15101, serverSidecar: 15108 } as const;

export interface WaypointHaproxy {
  /** The L7 proxies (plain, mTLS) and the sidecars of the mTLS side (client pod, each echo pod). */
  readonly pids: { readonly plain: number; readonly mtls: number; readonly sidecars: readonly number[] };
  readonly url: { readonly plain: string; readonly mtls: string };
  stop(): void;
}

export interface WaypointHaproxyOptions {
  /** `[node, main.ts, 'exec', '--cluster', name]`: argv prefix that runs a command in a pod. */
  readonly execArgv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly dir: string;
  readonly ips: { readonly hap: string; readonly echo: readonly { ip: string; weight: number }[] };
  readonly echoPort: number;
}

async function startInPod(o: WaypointHaproxyOptions, pod: string, cfg: string, children: ChildProcess[]) {
  checkConfig(cfg);
  const [cmd = '', ...args] = [...o.execArgv, pod, '--', 'haproxy', '-db', '-f', cfg];
  const child = spawn(cmd, args, { env: o.env, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  // Up to 30 s: `ferry exec` itself can take seconds to start on a loaded machine (cold compile cache).
  for (let i = 0; i < 600; i++) {
    const [pid] = haproxyPids(cfg);
    if (pid !== undefined) {
      await new Promise((r) => setTimeout(r, 200)); // listeners bound
      if (child.exitCode !== null) break;
      return pid;
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`haproxy in ${pod} (${cfg}) did not start: ${err.slice(-1500)}`);
}

export async function startWaypointHaproxy(o: WaypointHaproxyOptions): Promise<WaypointHaproxy> {
  ensureTools({ haproxy: 'haproxy' });
  const certs = await makeCerts(o.dir);
  const children: ChildProcess[] = [];
  const pids: number[] = [];
  const stop = () => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {}
    }
    for (const c of children) c.kill('SIGTERM');
  };
  try {
    const cfg = async (name: string, text: string) => {
      const path = join(o.dir, `${name}.cfg`);
      await writeFile(path, text);
      return path;
    };
    const direct = o.ips.echo.map((e) => ({ address: `${e.ip}:${o.echoPort}`, weight: e.weight }));
    const viaSidecars = o.ips.echo.map((e) => ({ address: `${e.ip}:${HAP_PORTS.serverSidecar}`, weight: e.weight }));
    const plainPid = await startInPod(
      o,
      'plain/hap',
      await cfg('hap-plain', l7Config(`${o.ips.hap}:${HAP_PORTS.plain}`, direct, null)),
      children,
    );
    pids.push(plainPid);
    const mtlsPid = await startInPod(
      o,
      'plain/hap',
      await cfg('hap-mtls', l7Config(`${o.ips.hap}:${HAP_PORTS.mtls}`, viaSidecars, certs)),
      children,
    );
    pids.push(mtlsPid);
    const sidecars: number[] = [];
    for (const [i, e] of o.ips.echo.entries()) {
      const text = serverSidecarConfig(certs, [
        { listen: `${e.ip}:${HAP_PORTS.serverSidecar}`, upstream: `127.0.0.1:${o.echoPort}` },
      ]);
      sidecars.push(await startInPod(o, `plain/echo-${'ab'[i]}`, await cfg(`sidecar-echo-${i}`, text), children));
      pids.push(sidecars.at(-1) ?? 0);
    }
    const clientText = clientSidecarConfig(certs, [
      { listen: `127.0.0.1:${HAP_PORTS.sidecar}`, upstream: `${o.ips.hap}:${HAP_PORTS.mtls}` },
    ]);
    sidecars.push(await startInPod(o, 'plain/client', await cfg('sidecar-client', clientText), children));
    pids.push(sidecars.at(-1) ?? 0);
    return {
      pids: { plain: plainPid, mtls: mtlsPid, sidecars },
      url: { plain: `http://${o.ips.hap}:${HAP_PORTS.plain}/`, mtls: `http://127.0.0.1:${HAP_PORTS.sidecar}/` },
      stop,
    };
  } catch (err) {
    stop();
    throw err;
  }
}

/** wrk's POST script: the same 1 KiB body as the fixed-rate load. */
export async function writeWrkScript(dir: string, size: number): Promise<string> {
  ensureTools({ wrk: 'wrk' });
  const path = join(dir, 'post.lua');
  await writeFile(path, `wrk.method = "POST"\nwrk.body = string.rep("x", ${size})\n`);
  return path;
}

/** Requests/s and non-2xx count from wrk's text output. */
export function parseWrk(text: string): { rps: number; non2xx: number; socketErrors: number } {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? Number.NaN);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = se === null ? 0 : se.slice(1).reduce((a, v) => a + Number(v), 0);
  return { rps, non2xx, socketErrors };
}
