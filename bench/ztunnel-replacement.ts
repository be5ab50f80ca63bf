// Hitless ztunnel replacement under load (issue 9 §3), in a real local cluster (root): the supervision
// fixture (a client on node-0, one echo pod per node behind one Service, the same through a waypoint),
// loads running from the client pod, and `ferry rollout restart ztunnel` replacing every node's ztunnel,
// BENCH_ROUNDS times (default 2). Reports failed new connections (one fresh connection every 10 ms,
// direct and through the waypoint), failed requests on keep-alive connections (4 workers), and each
// replacement's times, and the ztunnels' warnings meanwhile. Run: sudo node bench/ztunnel-replacement.ts.
// Istio's top complaint about ztunnel upgrades is reset connections: this measures ours.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../test/e2e/fixtures/supervision', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runZtunnelReplacement(): Promise<number> {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
  const stateRoot = mkdtempSync('/tmp/ferry-bench-replace-');
  const env = { ...process.env, FERRY_STATE_DIR: stateRoot };
  const cluster = `bench-replace-${process.pid}`;
  const ferry = (args: readonly string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(process.execPath, [MAIN, ...args], { env, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
      });
    });
  const children: ChildProcess[] = [];
  try {
    const up = await ferry(['up', '-f', FIXTURE, '--cluster', cluster]);
    if (up.code !== 0) throw new Error(`ferry up failed:\n${up.stdout}\n${up.stderr}`);
    const status = JSON.parse((await ferry(['status', '--json', '--cluster', cluster])).stdout) as {
      services: { namespace: string; name: string; vip: string | null }[];
    };
    const vip = (ns: string) => status.services.find((s) => s.namespace === ns && s.name === 'echo')?.vip ?? '';
    const load = (ns: string, args: readonly string[]) => {
      const child = spawn(
        process.execPath,
        [MAIN, 'exec', '--cluster', cluster, `${ns}/client`, '--', 'curl', '-s', `http://${vip(ns)}/`, ...args],
        { env, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      children.push(child);
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
      });
      const done = new Promise<string>((resolve) => child.on('close', () => resolve(out)));
      return { child, done };
    };
    const perNewConn = ['--count', '1000000', '--interval', '10', '--json', '-m', '5'];
    const direct = load('sup', perNewConn);
    const viaWaypoint = load('l7', perNewConn);
    const keepAlive = load('sup', ['--summary', '--concurrency', '4', '--count', String(12_000 * rounds), '-m', '5']);
    await new Promise((r) => setTimeout(r, 3_000)); // the loads are running
    const replacements: string[] = [];
    for (let i = 0; i < rounds; i++) {
      const r = await ferry(['rollout', 'restart', 'ztunnel', '--cluster', cluster]);
      replacements.push(
        ...r.stdout
          .trim()
          .split('\n')
          .map((l) => `round ${i + 1}: ${l}`),
      );
      if (r.code !== 0) throw new Error(`rollout failed:\n${r.stdout}\n${r.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 2_000));
    stopInPodLoads(cluster); // `ferry exec` does not forward signals: end the curls inside the pods
    const count = (text: string) => {
      const lines = text
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { status?: number; error?: { code?: string } });
      const failed = lines.filter((l) => l.status !== 200);
      return {
        total: lines.length,
        failed: failed.length,
        errors: failed.map((l) => l.error?.code ?? String(l.status)).slice(0, 10),
      };
    };
    const summary = {
      rounds,
      replacements,
      newConnectionsDirect: count(await direct.done),
      newConnectionsViaWaypoint: count(await viaWaypoint.done),
      keepAliveRequests: JSON.parse((await keepAlive.done).trim().split('\n').pop() ?? '{}') as unknown,
      // What the ztunnels logged at warn/error meanwhile (failed connections, ejections), by message and code.
      ztunnelWarnings: warningsIn(join(stateRoot, cluster, 'logs')),
    };
    for (const line of replacements) process.stdout.write(`${line}\n`);
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return 0;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await ferry(['down', '--cluster', cluster]);
    rmSync(stateRoot, { recursive: true, force: true });
  }
}

function warningsIn(logDir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of readdirSync(logDir).filter((n) => n.startsWith('ztunnel-'))) {
    for (const line of readFileSync(join(logDir, f), 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const l = JSON.parse(line) as { level?: string; msg?: string; code?: string; error?: string };
        if (l.level !== 'warn' && l.level !== 'error') continue;
        const key = `${f.replace(/\.log$/, '')}: ${l.msg ?? ''} ${l.code ?? ''}`.trim();
        out[key] = (out[key] ?? 0) + 1;
      } catch {
        // not a log line
      }
    }
  }
  return out;
}

/** SIGTERM to the cluster's in-pod curl loops (`--interval` in their command line). */
function stopInPodLoads(cluster: string): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cgroup = readFileSync(`/proc/${entry}/cgroup`, 'utf8');
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cgroup.includes(`/ferry.slice/${cluster}/pods/`) && argv.includes('--interval')) {
        process.kill(Number(entry), 'SIGTERM');
      }
    } catch {
      // gone
    }
  }
}

if (import.meta.main) process.exitCode = await runZtunnelReplacement();
