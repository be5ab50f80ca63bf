// Child processes of a benchmark run: backends (bench/servers.ts) and load generator runs (bench/loadgen.ts),
// optionally pinned to CPUs with taskset. Every child is killed when its handle is disposed and when this
// process exits, so an interrupted run leaves nothing behind.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** A CPU list for taskset (e.g. "0" or "0-1"), or null for no pinning. */
export type CpuList = string | null;

export function benchScript(name: string): string {
  return fileURLToPath(new URL(`./${name}`, import.meta.url));
}

function spawnNode(script: string, args: readonly string[], cpus: CpuList): ChildProcess {
  const [cmd, argv] =
    cpus === null
      ? [process.execPath, [script, ...args]]
      : ['taskset', ['-c', cpus, process.execPath, script, ...args]];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Pins every thread of a running process to cpus (no-op for null). */
export function pinProcess(pid: number, cpus: CpuList): void {
  if (cpus !== null) execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

export interface Backend extends AsyncDisposable {
  readonly pid: number;
  readonly port: number;
}

/** Starts an echo or sink server on host (random port); resolves once it listens. */
export async function startBackend(mode: 'echo' | 'sink', host: string, cpus: CpuList): Promise<Backend> {
  const child = spawnNode(benchScript('servers.ts'), [mode, host, '0'], cpus);
  let out = '';
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m !== null) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${mode} server exited (${code}): ${err.slice(-1000)}`)));
  });
  return {
    pid: child.pid ?? 0,
    port,
    async [Symbol.asyncDispose]() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** Runs bench/loadgen.ts to completion and returns its JSON answer. */
export function runLoadgen(args: readonly string[], cpus: CpuList): Promise<Record<string, number>> {
  return runJsonChild('loadgen.ts', args, cpus);
}

/** Runs a bench script (e.g. conn-churn.ts) to completion and returns the JSON object it printed last. */
export async function runJsonChild(
  script: string,
  args: readonly string[],
  cpus: CpuList,
): Promise<Record<string, number>> {
  const child = spawnNode(benchScript(script), args, cpus);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  const last = out.trim().split('\n').pop() ?? '';
  if (code !== 0 || !last.startsWith('{')) {
    throw new Error(`${script} ${args.join(' ')} failed (exit ${code}): ${err.slice(-1500)}`);
  }
  return JSON.parse(last) as Record<string, number>;
}
