// Runs ferry subcommands as child processes with the project's Node, parsing their JSON log lines.
// Used by the demo and `ferry up`, and by tests that need separate ztunnel processes. A child is killed
// when its handle is disposed, and when the parent exits.

import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { compileCacheEnv } from '../runtime/compile-cache.ts';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

export type LogLine = Record<string, unknown>;

export interface FerryProcess extends AsyncDisposable {
  readonly name: string;
  readonly child: ChildProcess;
  readonly lines: LogLine[];
  /** Non-JSON output (stderr and stray stdout), for error messages. */
  readonly text: string[];
  /** Resolves with the first line (seen or future) matching; rejects if the process exits first. */
  waitFor(pred: (line: LogLine) => boolean, what: string): Promise<LogLine>;
  /** SIGTERM, then waits for exit (SIGKILL after graceMs). Resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Starts `ferry <args>`; `main` runs another checkout's CLI (benchmarks compare trees side by side). */
export function spawnFerry(
  name: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  main: string = MAIN,
): FerryProcess {
  const child = spawn(process.execPath, [main, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...env, ...compileCacheEnv(env) },
  });
  live.add(child);
  const lines: LogLine[] = [];
  const text: string[] = [];
  const waiters = new Set<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let stdoutRest = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (stdoutRest + chunk).split('\n');
    stdoutRest = parts.pop() ?? '';
    for (const part of parts) {
      if (part.trim() === '') continue;
      let line: LogLine;
      try {
        line = JSON.parse(part) as LogLine;
      } catch {
        text.push(part);
        continue;
      }
      lines.push(line);
      for (const w of waiters) {
        if (w.pred(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => text.push(chunk));
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    });
  });
  const stop = async (graceMs = 5000): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
    return exited;
  };
  return {
    name,
    child,
    lines,
    text,
    exited,
    stop,
    waitFor(pred, what) {
      const found = lines.find(pred);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        waiters.add(w);
        void exited.then((code) => {
          if (!waiters.has(w)) return;
          waiters.delete(w);
          reject(new Error(`${name} exited (code ${code}) before ${what}:\n${text.join('').slice(-2000)}`));
        });
      });
    },
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}
